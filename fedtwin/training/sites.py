"""A site's side of a remote site call: its own data (simulated or loaded, validated once) and one operation.

The site-round flow (``flows/site.py``) is a thin wrapper around :func:`answer`: the coordinator sends the
site id, the operation, the round and a payload made by :mod:`federated.codec` (the call's arguments plus the
data set to use); the site decodes and checks it, loads or simulates its rows from its own data directory,
checks them with the same Great Expectations suite as the training flow (once per data file, remembered
beside it), runs :func:`federated.site.run_site_op` and answers with an encoded payload of plain data. No
Prefect here.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from federated import codec
from federated.client import ClientData
from federated.executor import SITE_OPS, SiteCall
from federated.site import run_site_op
from fedtwin.data.datasets import (
    PROFILES,
    LabelledWindows,
    get_profile,
    load_windows,
    save_windows,
    scenario_windows,
    train_scenarios,
    windows_frame,
)
from fedtwin.data.features import FEATURE_NAMES
from fedtwin.data.validation import validate_dataset
from fedtwin.errors import DataValidationError, FedtwinError
from plant_models import FAULTS

#: Flow name of the site-round flow; a site's deployment is ``f"{SITE_FLOW}/{site}"``.
SITE_FLOW = "fedtwin-site-round"

#: Payload format version (``{"v": 1, "args": {...}, "dataset": {...}}``).
WIRE_VERSION = 1


@dataclass(frozen=True)
class DatasetSpec:
    """Which data set a site trains on: a training profile around an operating point (the sweep's seeds)."""

    profile: str
    speed_rpm: float
    load_area_factor: float

    @classmethod
    def from_plain(cls, raw: Any) -> DatasetSpec:
        """Checked construction from decoded plain data; ValueError with the reason."""
        if not isinstance(raw, Mapping) or set(raw) != {"profile", "speed_rpm", "load_area_factor"}:
            raise ValueError("dataset must have exactly profile, speed_rpm, load_area_factor")
        if raw["profile"] not in PROFILES:
            raise ValueError(f"unknown training profile {raw['profile']!r}; choose from {sorted(PROFILES)}")
        nums = (raw["speed_rpm"], raw["load_area_factor"])
        if not all(isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) for x in nums):
            raise ValueError("dataset speed_rpm and load_area_factor must be finite numbers")
        if not (0 < nums[0] <= 3000 and 0 < nums[1] <= 10):
            raise ValueError(f"dataset operating point out of range: {nums[0]} rpm, load {nums[1]}")
        return cls(str(raw["profile"]), float(nums[0]), float(nums[1]))

    def to_plain(self) -> dict[str, Any]:
        """The spec as plain data (what travels in the payload)."""
        return {
            "profile": self.profile,
            "speed_rpm": self.speed_rpm,
            "load_area_factor": self.load_area_factor,
        }

    @property
    def key(self) -> str:
        """Directory name of this data set under the site's data directory."""
        seed = get_profile(self.profile).seed
        return f"{self.profile}-{self.speed_rpm:g}rpm-{self.load_area_factor:g}load-seed{seed}"


def request_payload(call: SiteCall, dataset: DatasetSpec) -> str:
    """What the coordinator sends for ``call`` (the flow run's ``payload`` parameter)."""
    return codec.encode({"v": WIRE_VERSION, "args": dict(call.args), "dataset": dataset.to_plain()})


def parse_request(site: str, op: str, server_round: int, payload: str) -> tuple[SiteCall, DatasetSpec]:
    """Decode and check a request; ValueError (or CodecError) with the reason."""
    if op not in SITE_OPS:
        raise ValueError(f"unknown site operation {op!r}; known: {list(SITE_OPS)}")
    if not isinstance(server_round, int) or isinstance(server_round, bool) or server_round < 0:
        raise ValueError(f"server_round must be a non-negative integer, got {server_round!r}")
    body = codec.decode(payload)
    if not isinstance(body, dict) or body.get("v") != WIRE_VERSION or not isinstance(body.get("args"), dict):
        raise ValueError(f"payload must be {{'v': {WIRE_VERSION}, 'args': {{...}}, 'dataset': {{...}}}}")
    return SiteCall(site, op, server_round, body["args"]), DatasetSpec.from_plain(body.get("dataset"))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _simulate(site: str, spec: DatasetSpec, path: Path) -> None:
    cfg = get_profile(spec.profile, spec.speed_rpm, spec.load_area_factor)
    designs = train_scenarios(cfg)
    if site not in designs:
        raise FedtwinError(f"site {site!r} is not in profile {spec.profile!r} (sites: {sorted(designs)})")
    tmp = path.with_name(f".{path.stem}-{os.getpid()}.npz")
    save_windows(scenario_windows(designs[site], cfg.window_s), tmp)
    tmp.replace(path)  # atomic: a concurrent or crashed run never sees half a file


def _validate(site: str, lw: LabelledWindows) -> None:
    df = windows_frame(lw, FEATURE_NAMES)
    faults = [f for f in FAULTS if site.startswith(f)]
    outcome = validate_dataset(
        df, signal_columns=list(FEATURE_NAMES), label_columns=faults, min_rows=20, site=site
    )
    if not outcome.success:
        raise DataValidationError(f"site {site}: data validation failed: " + "; ".join(outcome.failures))


def site_windows(site: str, spec: DatasetSpec, data_dir: Path) -> LabelledWindows:
    """The site's rows for ``spec``: loaded from its data directory, simulated there first if missing.

    The Great Expectations check runs once per data file; a marker with the file's hash records that it
    passed, so a changed file is checked again.
    """
    if not site or "/" in site or site.startswith("."):
        raise ValueError(f"invalid site id {site!r}")
    path = Path(data_dir) / spec.key / f"{site}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        _simulate(site, spec, path)
    marker = path.with_suffix(".valid.json")
    digest = _sha256(path)
    lw = load_windows(path)
    if not marker.exists() or json.loads(marker.read_text()).get("sha256") != digest:
        _validate(site, lw)
        marker.write_text(json.dumps({"sha256": digest, "rows": len(lw.X)}))
    return lw


def answer(site: str, op: str, server_round: int, payload: str, data_dir: Path) -> str:
    """Run one site call on the site's own data; the encoded plain-data answer."""
    call, spec = parse_request(site, op, server_round, payload)
    lw = site_windows(site, spec, data_dir)
    result = run_site_op(call, ClientData(lw.X, np.asarray(lw.Y, dtype=float), site))
    return codec.encode(result)
