"""The promotion policy: registry aliases, the gate metric, and when a candidate replaces the champion.

Pure code (no MLflow, Redis or Prefect), so the rule the training and retrain flows apply is the rule the
tests check, and a flow or a task only calls it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

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


#: The live figures the live gate compares (from ``fedtwin.training.live_eval.evaluate``).
LIVE_GATE_METRIC = "exact_match"
LIVE_FALSE_ALARMS = "false_alarms_per_asset_hour"


def _finite(metrics: Mapping[str, float], name: str, worst: float) -> float:
    value = float(metrics.get(name, math.nan))
    return value if math.isfinite(value) else worst


def live_verdict(
    candidate: Mapping[str, float] | None,
    champion: Mapping[str, float] | None,
    *,
    min_windows: int,
    min_faults: int,
) -> tuple[bool, str]:
    """The live gate: does the candidate beat the champion on a campaign's live evaluation?

    The candidate must have been evaluated on at least ``min_windows`` labelled windows covering at least
    ``min_faults`` distinct faults (an exam it did not sit, or one too short, never passes), raise no more
    false alarms per healthy asset-hour than the champion, and score a strictly higher live exact match
    (a tie passes only with a shorter median detection delay). Without a champion evaluated in the same
    campaign the candidate passes on the minimums alone. Missing or non-finite figures count as the worst.

    Returns
    -------
    (bool, str)
        The verdict and one line saying why.
    """
    if candidate is None:
        return False, "the candidate has no live evaluation"
    windows = _finite(candidate, "windows", 0.0)
    seen = _finite(candidate, "faults_seen", 0.0)
    if windows < min_windows or seen < min_faults:
        return False, (
            f"live evaluation too small: {windows:.0f} windows and {seen:.0f} faults seen "
            f"(need {min_windows} and {min_faults})"
        )
    if champion is None:
        return True, "no champion evaluated live: the candidate meets the minimums"
    fa_cand = _finite(candidate, LIVE_FALSE_ALARMS, math.inf)
    fa_champ = _finite(champion, LIVE_FALSE_ALARMS, math.inf)
    if fa_cand > fa_champ:
        return (
            False,
            f"more live false alarms than the champion ({fa_cand:.3g} vs {fa_champ:.3g} per asset-hour)",
        )
    em_cand = _finite(candidate, LIVE_GATE_METRIC, -math.inf)
    em_champ = _finite(champion, LIVE_GATE_METRIC, -math.inf)
    if em_cand != em_champ:
        verdict = em_cand > em_champ
        return verdict, f"live exact match {em_cand:.4f} vs the champion's {em_champ:.4f}"
    d_cand = _finite(candidate, "detection_delay_p50_s", math.inf)
    d_champ = _finite(champion, "detection_delay_p50_s", math.inf)
    return (
        d_cand < d_champ,
        f"equal live exact match; median detection delay {d_cand:.3g} s vs {d_champ:.3g} s",
    )


def should_promote(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    *,
    live_candidate: Mapping[str, float] | None = None,
    live_champion: Mapping[str, float] | None = None,
    require_live: bool = False,
    min_windows: int = 0,
    min_faults: int = 0,
) -> tuple[bool, str]:
    """The whole promotion rule: the offline gate (:func:`is_better`), then the live gate when required.

    Returns
    -------
    (bool, str)
        Whether the candidate replaces the champion, and one line saying why.
    """
    if not is_better(candidate, champion):
        return False, "does not beat the champion offline"
    if not require_live:
        return True, "beats the champion offline (live gate not required)"
    ok, why = live_verdict(live_candidate, live_champion, min_windows=min_windows, min_faults=min_faults)
    return ok, f"beats the champion offline; live: {why}"


def live_pair(
    results: Mapping[str, Mapping[str, float]], models: Mapping[str, Mapping[str, Any]], version: int
) -> tuple[Mapping[str, float] | None, Mapping[str, float] | None]:
    """(candidate's, champion's) figures of one live evaluation.

    The candidate is the shadow whose registry version is ``version``; the champion is the model that
    decided as champion on the most windows (a promotion during the campaign leaves two). None when absent.
    """
    cand = [
        n
        for n, info in models.items()
        if info.get("registry_version") == version and not results[n]["is_champion"]
    ]
    champs = [n for n in results if results[n]["is_champion"]]
    best_champ = max(champs, key=lambda n: results[n]["windows"], default=None)
    return (results[cand[0]] if cand else None), (results[best_champ] if best_champ else None)
