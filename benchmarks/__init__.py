"""Benchmarks: the executor side by side with upstream's AwsEcsExecutor (``benchmarks.compare``)."""
