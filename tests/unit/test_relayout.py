"""tools/relayout.py: the reference rewrite (what it changes, what it leaves alone) and the repo's layout."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

TOOL = Path(__file__).resolve().parents[2] / "tools" / "relayout.py"


@pytest.fixture(scope="module")
def relayout() -> ModuleType:
    spec = importlib.util.spec_from_file_location("relayout", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["relayout"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


MAPPING = {"cli": "app", "cli_stream": "app", "scorer": "streaming", "stack": "adapters", "schema": "data"}


def rewrite(relayout: ModuleType, text: str, tests: dict[str, str] | None = None) -> str:
    return str(relayout.rewrite_text(text, MAPPING, tests or {}))


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("from fedtwin.scorer import Scorer", "from fedtwin.streaming.scorer import Scorer"),
        ("import fedtwin.scorer as sc", "import fedtwin.streaming.scorer as sc"),
        ('mock.patch("fedtwin.scorer.Producer")', 'mock.patch("fedtwin.streaming.scorer.Producer")'),
        ('[sys.executable, "-m", "fedtwin.cli_stream"]', '[sys.executable, "-m", "fedtwin.app.cli_stream"]'),
        ('fedtwin = "fedtwin.cli:main"', 'fedtwin = "fedtwin.app.cli:main"'),
        ('    "fedtwin/schema.py",', '    "fedtwin/data/schema.py",'),
        ("    from fedtwin import stack", "    from fedtwin.adapters import stack"),
        (
            "from fedtwin import settings, stack as st, scorer  # why",
            "from fedtwin import settings  # why\nfrom fedtwin.adapters import stack as st\n"
            "from fedtwin.streaming import scorer",
        ),
        (
            "from fedtwin import (\n    scorer,\n    settings,\n)",
            "from fedtwin.streaming import scorer\nfrom fedtwin import settings",
        ),
        (
            "`fedtwin/{schema,scorer,settings}.py`",
            "`fedtwin/data/schema.py`, `fedtwin/streaming/scorer.py`, `fedtwin/settings.py`",
        ),
    ],
)
def test_rewrites_every_form_of_reference(relayout: ModuleType, before: str, after: str) -> None:
    assert rewrite(relayout, before) == after
    assert rewrite(relayout, after) == after  # idempotent: a rewritten reference no longer matches


@pytest.mark.parametrize(
    "text",
    [
        "topic fedtwin.sensors and event fedtwin.drift.detected",  # topics and events, not modules
        "logs under .fedtwin/stack/redis.log",  # the state directory, not fedtwin/stack.py
        "from fedtwin import settings, errors",  # kept at the top
        "fedtwin.streaming.scorer and fedtwin.cli_streaming",  # already moved; a longer name
        "myfedtwin.scorer",
    ],
)
def test_leaves_non_module_text_alone(relayout: ModuleType, text: str) -> None:
    assert rewrite(relayout, text) == text


def test_mirrored_test_paths_follow_their_module(relayout: ModuleType) -> None:
    assert relayout.test_target("test_scorer_isolation", MAPPING) == "streaming"
    assert relayout.test_target("test_cli_exit", MAPPING) == "app"
    assert relayout.test_target("test_cli_stream", MAPPING) == "app"
    assert relayout.test_target("test_settings", MAPPING) is None
    tests = {"test_scorer_isolation": "streaming"}
    assert (
        rewrite(relayout, "pytest tests/unit/fedtwin/test_scorer_isolation.py", tests)
        == "pytest tests/unit/fedtwin/streaming/test_scorer_isolation.py"
    )


def test_repository_has_no_old_paths_and_keeps_the_layering(relayout: ModuleType) -> None:
    """After a merge that brought old paths back, `python tools/relayout.py` fixes what this reports."""
    assert relayout.unmapped_modules(relayout.MAPPING) == []
    assert relayout.old_references(relayout.MAPPING) == []
    assert relayout.layering_breaks() == []
