"""Unit tests see no FEDTWIN_* variables: not the developer's shell's, and not those an integration session
in the same process set (under pytest-xdist a worker runs both kinds)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from fedtwin.settings import get_settings


@pytest.fixture(autouse=True)
def _no_fedtwin_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in [k for k in os.environ if k.startswith("FEDTWIN_")]:
        monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()  # the restored environment must not meet settings cached from the scrubbed one
