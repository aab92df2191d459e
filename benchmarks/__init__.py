"""The performance harness (SPEC §9): `python -m benchmarks.run`."""
