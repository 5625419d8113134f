"""The only code that touches boto3 and botocore: requests, responses and errors."""
