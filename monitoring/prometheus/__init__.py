"""The Prometheus files fedtwin ships (``prometheus.yml``, ``rules.yml`` beside this module) and the effective
config ``fedtwin stack up`` runs Prometheus on.

The shipped config scrapes the scorer at a fixed example port with ``rule_files`` relative to itself, so
``promtool check config`` works on it as it is; ``render_config`` swaps in the configured scorer target and an
absolute rules path, because the running copy lives in the stack's state directory.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
CONFIG_FILE = HERE / "prometheus.yml"
RULES_FILE = HERE / "rules.yml"
#: Scrape job of the streaming scorer (the ``job`` label of its series and of ``up``).
SCORER_JOB = "fedtwin-scorer"

__all__ = [
    "CONFIG_FILE",
    "RULES_FILE",
    "SCORER_JOB",
    "default_scorer_target",
    "render_config",
    "rule_expressions",
    "rule_metric_names",
]


def _scorer_job(config: dict[str, Any]) -> dict[str, Any]:
    for job in config.get("scrape_configs") or []:
        if job.get("job_name") == SCORER_JOB:
            return dict(job)
    raise ValueError(f"prometheus.yml: no scrape job named {SCORER_JOB!r}")


def default_scorer_target(config_text: str | None = None) -> str:
    """The scorer ``host:port`` the shipped config scrapes."""
    config = yaml.safe_load(config_text if config_text is not None else CONFIG_FILE.read_text())
    return str(_scorer_job(config)["static_configs"][0]["targets"][0])


def render_config(
    scorer_target: str,
    *,
    rules_file: Path = RULES_FILE,
    scrape_interval: str | None = None,
    config_text: str | None = None,
) -> str:
    """The shipped config with the scorer scraped at ``scorer_target`` and the rules file given by path.

    Parameters
    ----------
    scorer_target : str
        ``host:port`` of the scorer's ``/metrics``.
    rules_file : Path
        Rules to evaluate, made absolute (Prometheus resolves relative paths against the config's folder).
    scrape_interval : str, optional
        Override of the global scrape and evaluation interval, e.g. ``"1s"`` in tests.
    config_text : str, optional
        Config to start from (default the shipped ``prometheus.yml``).
    """
    host, _, port = scorer_target.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"scorer_target: expected host:port, got {scorer_target!r}")
    config = yaml.safe_load(config_text if config_text is not None else CONFIG_FILE.read_text())
    config["rule_files"] = [str(Path(rules_file).resolve())]
    if scrape_interval is not None:
        config.setdefault("global", {}).update(
            {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval}
        )
    jobs = []
    for job in config["scrape_configs"]:
        if job.get("job_name") == SCORER_JOB:
            job = {**job, "static_configs": [{"targets": [scorer_target]}]}
        jobs.append(job)
    _scorer_job(config)  # fails clearly when the job is missing
    config["scrape_configs"] = jobs
    return str(yaml.safe_dump(config, sort_keys=False))


def rule_expressions(rules_text: str | None = None) -> dict[str, str]:
    """Alert name -> PromQL expression of every rule in the rules file."""
    data = yaml.safe_load(rules_text if rules_text is not None else RULES_FILE.read_text())
    return {
        str(rule.get("alert") or rule.get("record")): str(rule["expr"])
        for group in data["groups"]
        for rule in group["rules"]
    }


# Series names of fedtwin metrics in PromQL; label values are in quotes and are stripped first.
_METRIC = re.compile(r"\b(fedtwin_[a-z0-9_]+)")
_QUOTED = re.compile(r'"[^"]*"')


def rule_metric_names(expression: str) -> set[str]:
    """The ``fedtwin_*`` series names a PromQL expression reads."""
    return set(_METRIC.findall(_QUOTED.sub('""', expression)))
