"""Benchmarks: configuration resolution cost, this package against the original way of reading.

Run ``python -m benchmarks.run`` (or ``--quick``); see ``docs/benchmarks.md``.
"""
