"""Plugins for every pytest run in this repository, loaded before collection (a root conftest may
name them; `tests/` is importable from here whether pytest runs as `python -m pytest` or `pytest`)."""

pytest_plugins = ["tests.forked_workers"]
