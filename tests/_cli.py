"""Run the `fedtwin` entry point in-process as a shell would, and return its exit status."""

from __future__ import annotations

import sys

import pytest

from fedtwin.app import cli


def run_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    """``fedtwin *args`` through ``cli.main`` (its error handling included); the exit status."""
    monkeypatch.setattr(sys, "argv", ["fedtwin", *args])
    try:
        cli.main()
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0
