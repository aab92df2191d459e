"""The performance harness (BENCHMARKS.md): `python -m benchmarks.run`."""
