"""The drift event contract between the drift monitor and the retrain deployment's trigger."""

from __future__ import annotations

from typing import Any

DRIFT_EVENT = "fedtwin.drift.detected"
FLEET_RESOURCE_PATTERN = "fedtwin.fleet.*"


def fleet_resource(fleet: str) -> dict[str, str]:
    """Prefect resource naming the fleet the event is about."""
    return {"prefect.resource.id": f"fedtwin.fleet.{fleet}", "prefect.resource.name": fleet}


def drift_payload(
    *,
    reference_id: str,
    current_id: str,
    drifted_features: list[str],
    drift_share: float,
    n_reference: int,
    n_current: int,
    report: str | None = None,
) -> dict[str, Any]:
    """Payload of a drift event; the retrain flow receives it as its ``drift`` parameter."""
    return {
        "reference_id": reference_id,
        "current_id": current_id,
        "drifted_features": list(drifted_features),
        "drift_share": float(drift_share),
        "n_reference": int(n_reference),
        "n_current": int(n_current),
        "report": report,
    }
