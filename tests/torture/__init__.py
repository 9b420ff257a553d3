"""Torture suite: crash loop, fault injection, concurrency, corruption, bad-input fuzzing.

Run ``python -m tests.torture [--quick|--long]`` from the repository root; the quick mode
also runs in CI through ``tests/torture/test_torture_quick.py``.
"""
