"""Drift monitor flow: recent scored windows vs the serving model's training reference (Evidently)."""

from __future__ import annotations

from typing import Any

from prefect import flow

from fedtwin.settings import get_settings
from monitoring.events import drift_payload
from tasks.monitoring import (
    check_drift,
    emit_drift_event,
    load_reference,
    log_drift_to_mlflow,
    publish_summary,
    read_recent_windows,
    record_in_workspace,
)


@flow(name="fedtwin-drift-monitor", log_prints=True)
def drift_monitor_flow(
    windows: int = 240, since_s: float | None = None, fleet: str = "default"
) -> dict[str, Any]:
    """Compare the last ``windows`` scored windows with the reference; emit a drift event when they differ.

    Each valid check is also a snapshot in the Evidently UI workspace, in the project named ``fleet``.
    """
    ref = load_reference()
    if isinstance(ref, str):
        return {"status": "not_enough_data", "reason": ref}
    reference, ref_id, version = ref
    current, cur_id = read_recent_windows(windows, since_s)
    result = check_drift(reference, current, get_settings().drift_share, version, ref_id, cur_id)
    # The snapshot (MBs of widgets) goes to the Evidently workspace only, not into other tasks' inputs. A
    # broken monitoring UI must not stop the drift event (and so the retrain): its failure is only logged.
    recorded = record_in_workspace(result.pop("snapshot"), fleet, return_state=True)
    dashboard = recorded.result() if recorded.is_completed() else None
    log_drift_to_mlflow(result, ref_id, cur_id)
    publish_summary(result, ref_id, cur_id, dashboard)
    feature = result["feature"]
    # Only feature drift (the operating point moved) retrains. Prediction drift alone is what a real fault
    # looks like (one pump alerting); retraining on it would calibrate the fault away, so it is only reported.
    drifted = feature["status"] == "drift"
    if drifted:
        payload = drift_payload(
            reference_id=ref_id,
            current_id=cur_id,
            drifted_features=feature["drifted_features"],
            drift_share=feature["drift_share"],
            n_reference=feature["n_reference"],
            n_current=feature["n_current"],
            report=result["html"],
        )
        emit_drift_event(payload, fleet)
    status = "drift" if drifted else feature["status"]
    return {
        "status": status,
        "reason": feature["reason"],
        "reference_id": ref_id,
        "current_id": cur_id,
        "dashboard": dashboard,
        **result,
    }
