"""Helpers shared by several test folders (imported as `tests.support.*`; the repository root is
on pytest's `pythonpath` and on mypy's `mypy_path`)."""
