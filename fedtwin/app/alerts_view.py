"""The alert stream as rows a person reads: when, asset, raise/clear, faults with scores, model version.

Pure code: ``fedtwin alerts`` reads the Redis stream and prints these rows; tests feed it records directly.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fedtwin.data.schema import SchemaError, decode_alert

COLUMNS = ("time", "asset", "kind", "faults", "scores", "model")


@dataclass(frozen=True)
class AlertRow:
    """One alert, formatted; ``raw_id`` is the stream entry id (resume point for ``--follow``)."""

    raw_id: str
    cells: tuple[str, ...]
    kind: str


def _when(epoch_s: Any) -> str:
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(epoch_s)))
    except (TypeError, ValueError, OverflowError, OSError):
        return "?"


def format_alert(raw_id: str, alert: Mapping[str, Any]) -> AlertRow:
    """One decoded alert as table cells (scores sorted highest first, two decimals)."""
    scores = alert.get("scores") or {}
    ranked = sorted(scores.items(), key=lambda kv: -float(kv[1]))
    faults = alert.get("faults") or []
    cells = (
        _when(alert.get("window_end")),
        str(alert.get("asset", "?")),
        str(alert.get("kind", "?")),
        "+".join(faults) if faults else "-",
        ", ".join(f"{k}={float(v):.2f}" for k, v in ranked),
        f"v{alert.get('model_version', '?')}",
    )
    return AlertRow(raw_id, cells, str(alert.get("kind", "?")))


def alert_rows(entries: Iterable[tuple[bytes | str, Mapping[bytes, bytes]]]) -> tuple[list[AlertRow], int]:
    """Rows of the decodable alerts among Redis stream entries, and how many entries were not alerts."""
    rows: list[AlertRow] = []
    bad = 0
    for entry_id, fields in entries:
        ident = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
        try:
            rows.append(format_alert(ident, decode_alert(fields[b"alert"])))
        except (KeyError, SchemaError):
            bad += 1
    return rows, bad
