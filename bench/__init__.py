"""Benchmark harness (issue 8): ``bash bench/run.sh`` or ``python -m bench``.

Not part of the server: it starts the server, baselines and wrk, and writes bench/results/.
"""
