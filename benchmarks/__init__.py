"""Benchmarks of the harness itself (not part of the test suite): ``python -m benchmarks.run``."""
