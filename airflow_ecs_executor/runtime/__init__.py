"""Threads, queues and the clock: the launcher and the tracker. They do I/O and return values."""
