"""Code the tests and the benchmarks share: tiny datasets, tiny random-weight models, and the
official-style reference implementation of the motion metrics.

Imported as ``tests.helpers.<module>``: pytest puts the repository root on the path
(``pythonpath`` in pyproject.toml); benchmarks run with ``PYTHONPATH=.``.
"""
