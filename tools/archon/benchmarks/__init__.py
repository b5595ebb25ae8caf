"""Benchmarks behind `archon bench ...`: speed and accuracy targets live here, not in tests."""
