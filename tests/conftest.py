"""Shared test configuration: keep third-party telemetry off and nothing written outside temporary folders."""

import os
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")


#: Rough seconds per test where no ``long(seconds=...)`` says otherwise; only the balance of lanes uses them.
INTEGRATION_TEST_S = 8.0
UNIT_TEST_S = 0.2


def _weight(item: Any) -> float:
    mark = item.get_closest_marker("long")
    if mark is not None:
        return float(mark.kwargs.get("seconds", 120.0))
    return INTEGRATION_TEST_S if _is_integration(item) else UNIT_TEST_S


def _is_integration(item: Any) -> bool:
    return "integration" in item.nodeid.split("/")


def _groups(items: list[Any]) -> list[list[Any]]:
    """Tests that must stay on one worker: an integration module (its module fixtures start services once);
    every unit test is a group of its own."""
    out: dict[str, list[Any]] = {}
    for item in items:
        key = item.nodeid.split("::")[0] if _is_integration(item) else item.nodeid
        out.setdefault(key, []).append(item)
    return list(out.values())


def _lanes(items: list[Any], n: int) -> list[Any] | None:
    """``items`` reordered as ``n`` lanes of the sizes pytest-xdist's work-stealing scheduler first hands its
    ``n`` workers (consecutive slices of the collection), each lane starting with its share of the long and
    integration tests (balanced by weight) and filled up with unit tests. None when they do not fit."""
    sizes, left = [], len(items)
    for k in range(n):
        sizes.append(left // (n - k))
        left -= sizes[-1]
    heavy = [g for g in _groups(items) if _is_integration(g[0]) or g[0].get_closest_marker("long")]
    heavy.sort(key=lambda g: -sum(map(_weight, g)))
    lanes: list[list[Any]] = [[] for _ in range(n)]
    weights = [0.0] * n
    for g in heavy:  # the heaviest first onto the lightest lane (longest-processing-time rule)
        k = min(range(n), key=lambda j: weights[j])
        lanes[k].extend(g)
        weights[k] += sum(map(_weight, g))
    placed = {id(i) for lane in lanes for i in lane}
    light = iter([i for i in items if id(i) not in placed])
    for k in range(n):
        if len(lanes[k]) > sizes[k]:
            return None
        lanes[k].extend(next(light) for _ in range(sizes[k] - len(lanes[k])))
    return [i for lane in lanes for i in lane]


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """Run order. Alone: tests marked ``long`` (minutes of mostly waiting on services), then the other
    integration tests, then the unit tests. Under pytest-xdist (`make test` runs ``-n 3 --dist worksteal``):
    one lane per worker, so the long waits start at once on different workers and overlap with the CPU-bound
    unit tests instead of queueing on one worker or forming a tail. Every worker computes the same order."""

    def rank(item: Any) -> int:
        if item.get_closest_marker("long") is not None:
            return 0
        return 1 if _is_integration(item) else 2

    items.sort(key=rank)  # stable: the order within each rank is the collection order
    n = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if n > 1:
        order = _lanes(items, n)
        if order is not None:
            items[:] = order
