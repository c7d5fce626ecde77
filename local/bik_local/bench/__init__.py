"""Benchmarks: every module here with a ``run() -> dict`` is one benchmark (`make bench`)."""
