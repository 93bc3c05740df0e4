"""Benchmarks: each module runs with ``python -m bench.NAME`` and measures its own floors."""
