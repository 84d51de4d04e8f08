"""The shipped Prometheus rules read only series the scorer registers, with labels those series have, and the
config fedtwin runs Prometheus on scrapes the configured scorer with the shipped rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from monitoring import prometheus as prom
from monitoring.metrics import ScorerMetrics

ALERTS = {
    "FedtwinScorerDown",
    "FedtwinNoModelServed",
    "FedtwinConsumerLagHigh",
    "FedtwinDlqRateHigh",
    "FedtwinAlertRateHigh",
}
_SELECTOR = re.compile(r"\b(fedtwin_[a-z0-9_]+|up)\{([^}]*)\}")


def _label_names() -> dict[str, set[str]]:
    """Series name -> label names, from the scorer's own collectors."""
    metrics = ScorerMetrics()
    out: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        collector = metrics.registry._names_to_collectors[family.name]  # no public accessor
        labels = set(getattr(collector, "_labelnames", ()))
        for name in metrics.series_names():
            if name.startswith(family.name):
                out[name] = labels
    return out


def test_the_rules_cover_the_four_operator_questions_plus_a_dead_scorer() -> None:
    assert set(prom.rule_expressions()) == ALERTS


def test_every_rule_reads_only_series_the_scorer_registers() -> None:
    registered = ScorerMetrics().series_names()
    for alert, expr in prom.rule_expressions().items():
        names = prom.rule_metric_names(expr)
        assert names or "up{" in expr, f"{alert} reads no fedtwin series: {expr}"
        assert names <= registered, f"{alert} reads unregistered {sorted(names - registered)}"


def test_label_selectors_use_labels_those_series_have() -> None:
    labels = _label_names()
    assert labels["fedtwin_scorer_messages_total"] == {"outcome"}
    for alert, expr in prom.rule_expressions().items():
        for name, selector in _SELECTOR.findall(expr):
            used = set(re.findall(r"(\w+)\s*[=!]~?", selector))
            if name == "up":
                assert f'job="{prom.SCORER_JOB}"' in selector, alert
                continue
            assert used <= labels[name], f"{alert}: {name} has no label(s) {sorted(used - labels[name])}"


def test_metric_names_in_label_values_are_not_mistaken_for_series() -> None:
    expr = 'rate(fedtwin_a_total{outcome="fedtwin_b"}[5m]) / fedtwin_c'
    assert prom.rule_metric_names(expr) == {"fedtwin_a_total", "fedtwin_c"}


def test_the_shipped_config_scrapes_the_scorer_job_with_the_shipped_rules() -> None:
    config = yaml.safe_load(prom.CONFIG_FILE.read_text())
    assert config["rule_files"] == ["rules.yml"]
    assert [j["job_name"] for j in config["scrape_configs"]] == [prom.SCORER_JOB]
    assert prom.default_scorer_target() == "127.0.0.1:9108"


def test_render_config_sets_the_target_an_absolute_rules_path_and_the_interval(tmp_path: Path) -> None:
    rendered = yaml.safe_load(prom.render_config("127.0.0.1:39108", scrape_interval="1s"))
    assert rendered["scrape_configs"][0]["static_configs"] == [{"targets": ["127.0.0.1:39108"]}]
    assert rendered["rule_files"] == [str(prom.RULES_FILE)]
    assert Path(rendered["rule_files"][0]).is_absolute()
    assert rendered["global"] == {"scrape_interval": "1s", "evaluation_interval": "1s"}
    # Without an override the shipped intervals stay.
    assert yaml.safe_load(prom.render_config("h:1"))["global"]["scrape_interval"] == "15s"


def test_render_config_keeps_other_jobs_and_refuses_bad_input() -> None:
    text = yaml.safe_dump(
        {
            "scrape_configs": [
                {"job_name": "node", "static_configs": [{"targets": ["127.0.0.1:9100"]}]},
                {"job_name": prom.SCORER_JOB, "static_configs": [{"targets": ["x:1"]}]},
            ]
        }
    )
    jobs = yaml.safe_load(prom.render_config("127.0.0.1:2", config_text=text))["scrape_configs"]
    assert jobs[0] == {"job_name": "node", "static_configs": [{"targets": ["127.0.0.1:9100"]}]}
    assert jobs[1]["static_configs"] == [{"targets": ["127.0.0.1:2"]}]
    for bad in ("127.0.0.1", "127.0.0.1:http", ":9108", "h:0", "h:70000"):
        with pytest.raises(ValueError, match="scorer_target"):
            prom.render_config(bad)
    no_job = yaml.safe_dump({"scrape_configs": [{"job_name": "node"}]})
    with pytest.raises(ValueError, match="no scrape job named"):
        prom.render_config("h:1", config_text=no_job)
