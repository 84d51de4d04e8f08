"""The promotion policy: registry aliases, the gate metric, and when a candidate replaces the champion.

Pure code (no MLflow, Redis or Prefect), so the rule the training and retrain flows apply is the rule the
tests check, and a flow or a task only calls it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

CHAMPION = "champion"
CHALLENGER = "challenger"
GATE_METRIC = "exact_match_8class"
# The figures a user compares strategies by, in the order the MLflow UI and the reports show them.
HEADLINE_METRICS: tuple[str, ...] = (GATE_METRIC, "fault_detection_acc", "false_alarm_rate")


def _score(metrics: Mapping[str, float], metric: str) -> float:
    value = float(metrics.get(metric, math.nan))
    return value if math.isfinite(value) else -math.inf


def is_better(
    candidate: Mapping[str, float], champion: Mapping[str, float] | None, metric: str = GATE_METRIC
) -> bool:
    """The champion gate: a candidate wins when there is no champion or it scores strictly higher.

    Ties go to the candidate only when its false-alarm rate is lower, so an equal model never churns serving.
    A missing or non-finite gate metric counts as the worst score, so a broken evaluation never wins.

    Parameters
    ----------
    candidate, champion : mapping of str to float
        Held-out metrics of the candidate and of the current champion (``None``: there is none).
    metric : str
        The gate metric.

    Returns
    -------
    bool
        True when the candidate should become the champion.
    """
    if champion is None:
        return math.isfinite(float(candidate.get(metric, math.nan)))
    cand, champ = _score(candidate, metric), _score(champion, metric)
    if cand != champ:
        return cand > champ
    return float(candidate.get("false_alarm_rate", 1.0)) < float(champion.get("false_alarm_rate", 1.0))


def best_strategy(reports: Mapping[str, Mapping[str, float]], metric: str = GATE_METRIC) -> str:
    """The strategy whose report scores highest on ``metric`` (first listed wins a tie).

    Raises
    ------
    ValueError
        When ``reports`` is empty.
    """
    if not reports:
        raise ValueError("no strategy was trained, so none can be picked")
    return max(reports, key=lambda name: _score(reports[name], metric))
