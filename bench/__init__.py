"""Benchmarks: run as modules, e.g. ``.venv/bin/python -m bench.import_rate``."""
