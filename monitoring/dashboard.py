"""Drift over time for people who do not read JSON: a JSON-lines history and a static HTML (or PNG) page.

``append_history`` adds one line per drift check; ``render_dashboard`` draws drift share (with the threshold)
and the number of drifted features over time, and lists recent checks with links to their reports. Matplotlib
is imported lazily and used through its object API with the Agg canvas, so no global backend is touched.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitoring.detectors import DriftResult

_STATUS_COLOURS = {
    "drift": "#d62728",
    "no_drift": "#2ca02c",
    "not_enough_data": "#7f7f7f",
    "invalid_data": "#ff7f0e",
}


def _iso(timestamp: datetime | str | None) -> str:
    if timestamp is None:
        return datetime.now(UTC).isoformat(timespec="seconds")
    if isinstance(timestamp, datetime):
        stamp = timestamp if timestamp.tzinfo else timestamp.replace(tzinfo=UTC)
        return stamp.isoformat(timespec="seconds")
    return datetime.fromisoformat(timestamp).isoformat(timespec="seconds")  # validates the string


def append_history(
    history_path: str | Path,
    result: DriftResult,
    timestamp: datetime | str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Append one check to a JSON-lines history (created with its folder if missing); return the record.

    ``extra`` keys (e.g. ``reference_window``, ``current_window``, ``asset``) are stored as given. Naive
    datetimes are taken as UTC.
    """
    record: dict[str, Any] = {
        "timestamp": _iso(timestamp),
        "status": result.status,
        "drift_share": float(result.drift_share),
        "threshold": float(result.threshold),
        "n_drifted": len(result.drifted_features),
        "n_compared": len(result.per_feature),
        "drifted_features": list(result.drifted_features),
        "n_reference": result.n_reference,
        "n_current": result.n_current,
        "detector": result.detector,
        "reason": result.reason,
        "html_path": result.html_path,
        "json_path": result.json_path,
        **extra,
    }
    path = Path(history_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One write call per line in append mode keeps concurrent appenders from interleaving within a line.
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, default=str) + "\n")
    return record


def load_history(history_path: str | Path) -> list[dict[str, Any]]:
    """Records of a history file in file order; missing file -> empty list, unreadable lines are skipped."""
    path = Path(history_path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
            record["_time"] = datetime.fromisoformat(record["timestamp"])
        except (ValueError, KeyError, TypeError):
            continue  # a half-written last line from a crashed writer should not break the page
        records.append(record)
    return records


def _plot_png(records: list[dict[str, Any]], title: str) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 5.5), dpi=100)
    FigureCanvasAgg(fig)
    ax_share, ax_count = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    if not records:
        ax_share.text(0.5, 0.5, "no drift checks recorded yet", ha="center", va="center",
                      transform=ax_share.transAxes)  # fmt: skip
    else:
        times = [r["_time"] for r in records]
        shares = [r.get("drift_share", 0.0) for r in records]
        # Only valid checks have a share; joining the others in would draw fake dips to zero.
        valid = [(t, s) for t, s, r in zip(times, shares, records, strict=True)
                 if r.get("status") in ("drift", "no_drift")]  # fmt: skip
        if valid:
            ax_share.plot(*zip(*valid, strict=True), color="#1f77b4", linewidth=1, zorder=1)
        for status, colour in _STATUS_COLOURS.items():
            pts = [
                (t, s) for t, s, r in zip(times, shares, records, strict=True) if r.get("status") == status
            ]
            if pts:
                marker = "o" if status in ("drift", "no_drift") else "x"
                ax_share.scatter(*zip(*pts, strict=True), color=colour, marker=marker, label=status, zorder=2)
        ax_share.step(times, [r.get("threshold", 0.5) for r in records], where="post", color="#d62728",
                      linestyle="--", linewidth=1, label="threshold")  # fmt: skip
        ax_count.bar(
            times, [r.get("n_drifted", 0) for r in records], width=_bar_width(times), color="#9467bd"
        )
        ax_share.legend(loc="upper left", fontsize=8, ncols=5)
    ax_share.set_ylim(-0.02, 1.02)
    ax_share.set_ylabel("share of drifted features")
    ax_share.set_title(title)
    ax_share.grid(alpha=0.3)
    ax_count.set_ylabel("drifted features")
    ax_count.set_xlabel("check time (UTC)")
    ax_count.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _bar_width(times: list[datetime]) -> float:
    """Bar width in days (matplotlib date units): 60% of the smallest gap between checks."""
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times) if b > a]
    return 0.6 * (min(gaps) if gaps else 60.0) / 86_400.0


def _link(target: str | None, page: Path, text: str) -> str:
    if not target:
        return ""
    try:
        href = os.path.relpath(Path(target).resolve(), page.parent.resolve())
    except ValueError:  # different drive on Windows
        href = Path(target).resolve().as_uri()
    return f"<a href='{html.escape(Path(href).as_posix())}'>{html.escape(text)}</a>"


def _page(records: list[dict[str, Any]], png: bytes, page: Path, title: str, rows: int) -> str:
    latest_report = next((r for r in reversed(records) if r.get("html_path")), None)
    last = records[-1] if records else None
    summary = "No drift checks recorded yet."
    if last is not None:
        summary = (
            f"Latest check {html.escape(last['timestamp'])}: <b style='color:"
            f"{_STATUS_COLOURS.get(last['status'], '#000')}'>{html.escape(last['status'])}</b> — "
            f"{html.escape(last.get('reason', ''))}"
        )
    latest_link = (
        f"<p>Latest full report: {_link(latest_report['html_path'], page, latest_report['timestamp'])}</p>"
        if latest_report
        else ""
    )
    body_rows = []
    for r in reversed(records[-rows:]):
        features = ", ".join(r.get("drifted_features", [])[:6])
        if len(r.get("drifted_features", [])) > 6:
            features += ", ..."
        colour = _STATUS_COLOURS.get(r.get("status", ""), "#000")
        body_rows.append(
            f"<tr><td>{html.escape(r['timestamp'])}</td>"
            f"<td style='color:{colour}'>{html.escape(str(r.get('status')))}</td>"
            f"<td>{r.get('drift_share', 0.0):.2f} / {r.get('threshold', 0.0):.2f}</td>"
            f"<td>{r.get('n_drifted', 0)} of {r.get('n_compared', 0)}</td><td>{html.escape(features)}</td>"
            f"<td>{_link(r.get('html_path'), page, 'html')} {_link(r.get('json_path'), page, 'json')}"
            "</td></tr>"
        )
    image = base64.b64encode(png).decode("ascii")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:1.5em}} table{{border-collapse:collapse;font-size:0.9em}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}</style></head>
<body><h1>{html.escape(title)}</h1><p>{summary}</p>{latest_link}
<img alt="drift share and drifted features over time" src="data:image/png;base64,{image}">
<h2>Recent checks</h2>
<table><tr><th>time (UTC)</th><th>status</th><th>share / threshold</th><th>drifted</th><th>features</th>
<th>reports</th></tr>
{"".join(body_rows)}
</table><p>{len(records)} checks in history.</p></body></html>
"""


def render_dashboard(
    history_path: str | Path,
    out_path: str | Path,
    *,
    title: str = "fedtwin feature drift",
    last_n: int | None = 500,
    table_rows: int = 20,
) -> Path:
    """Render the history as a static page: ``.png`` writes the chart only, anything else an HTML page.

    The HTML embeds the chart (base64 PNG), a one-line summary of the latest check, a link to the latest
    Evidently report and a table of the ``table_rows`` most recent checks with report links (relative to the
    page). ``last_n`` limits the chart to the most recent checks. Returns the written path.
    """
    records = load_history(history_path)
    if last_n is not None:
        records = records[-last_n:]
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = _plot_png(records, title)
    if out.suffix.lower() == ".png":
        out.write_bytes(png)
    else:
        out.write_text(_page(records, png, out, title, table_rows), encoding="utf-8")
    return out
