"""Benchmarks, run by hand (never as tests): `python -m benchmarks.<name> --help`; results in docs/performance.md."""
