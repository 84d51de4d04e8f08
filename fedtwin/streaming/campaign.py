"""Scripted fault campaigns: a YAML scenario played on the live plant, the same exam for every model.

Pure code: the campaign file's schema (pydantic, every field checked with a one-line error) and the schedule
that says which control changes are due at a plant tick. ``flows/campaign.py`` plays it on a live fleet
through :mod:`fedtwin.streaming.live`'s control mechanism and finishes with the live evaluation.

A campaign file::

    name: standard
    assets: 4                # exam-1 .. exam-4 (asset_prefix), or a list of names
    asset_prefix: exam
    seed: 500
    duration_s: 90           # plant seconds
    speedup: 4               # x real time (0: as fast as the simulation runs)
    events:
      - {at: 5, asset: exam-1, fault: leak, severity: 0.6}
      - {at: 30, asset: exam-1, clear: true}
      - {at: 10, asset: exam-2, operating_point: {speed_rpm: 1100, load_area_factor: 1.1}}

Each event does exactly one thing: ``fault`` (+ ``severity`` in (0, 1]; 0 removes that fault), ``clear``
(remove every fault, sensor faults included), ``operating_point``, or ``sensor`` (``{stuck: pressure}``,
``{drift: flow, drift_rate: 0.05}``, ``{}`` repairs; a lying sensor is not a fault label). ``at`` is plant
seconds from the campaign's start; the change takes effect from the first chunk at or after it, and the truth
records say exactly which one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fedtwin.errors import FedtwinError
from plant_models.spec import FAULTS, OPERATING_POINT, SIGNALS

#: Operating-point limits of the plant (``plant_models.OperatingPoint`` checks them again when applied).
SPEED_RANGE = (100.0, OPERATING_POINT.speed_rpm_max)
LOAD_RANGE = OPERATING_POINT.load_area_factor_range


class OperatingPointChange(BaseModel):
    """New crank speed set-point and/or outlet load of one asset."""

    model_config = ConfigDict(extra="forbid")

    speed_rpm: float | None = Field(None, ge=SPEED_RANGE[0], le=SPEED_RANGE[1])
    load_area_factor: float | None = Field(None, ge=LOAD_RANGE[0], le=LOAD_RANGE[1])

    @model_validator(mode="after")
    def _something(self) -> OperatingPointChange:
        if self.speed_rpm is None and self.load_area_factor is None:
            raise ValueError("give speed_rpm and/or load_area_factor")
        return self


SENSORS: tuple[str, ...] = SIGNALS


class SensorChange(BaseModel):
    """Sensor faults of one asset from now on: ``stuck`` freezes a reading, ``drift`` adds a ramp of
    ``drift_rate`` units per second; ``{}`` repairs every sensor. Not a fault label: the pump is healthy."""

    model_config = ConfigDict(extra="forbid")

    stuck: str | None = None
    drift: str | None = None
    drift_rate: float = Field(0.0, ge=-10, le=10)

    @model_validator(mode="after")
    def _known(self) -> SensorChange:
        for name in (self.stuck, self.drift):
            if name is not None and name not in SENSORS:
                raise ValueError(f"unknown sensor {name!r}: expected one of {', '.join(SENSORS)}")
        if self.drift is None and self.drift_rate != 0:
            raise ValueError("drift_rate goes with drift")
        return self


class Event(BaseModel):
    """One scripted change on one asset at plant time ``at`` (s from the campaign's start)."""

    model_config = ConfigDict(extra="forbid")

    at: float = Field(ge=0)
    asset: str = Field(min_length=1, max_length=128)
    fault: str | None = None
    severity: float | None = Field(None, ge=0, le=1)
    clear: bool = False
    operating_point: OperatingPointChange | None = None
    sensor: SensorChange | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Event:
        actions = [
            self.fault is not None,
            self.clear,
            self.operating_point is not None,
            self.sensor is not None,
        ]
        if sum(actions) != 1:
            raise ValueError(
                "an event does exactly one of: fault (+ severity), clear: true, operating_point, sensor"
            )
        if self.fault is not None:
            if self.fault not in FAULTS:
                raise ValueError(f"unknown fault {self.fault!r}: expected one of {', '.join(FAULTS)}")
            if self.severity is None:
                raise ValueError(f"fault {self.fault!r} needs a severity in [0, 1]")
        elif self.severity is not None:
            raise ValueError("severity goes with fault")
        return self


class Campaign(BaseModel):
    """A campaign file: the fleet, how long and how fast it runs, and the scripted events."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    assets: int | list[str] = 4
    asset_prefix: str = Field("exam", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = Field(0, ge=0)
    duration_s: float = Field(gt=0, le=86_400)
    speedup: float = Field(0.0, ge=0)
    events: list[Event] = Field(default_factory=list)

    @model_validator(mode="after")
    def _events_fit(self) -> Campaign:
        names = self.asset_names
        if not names or len(set(names)) != len(names):
            raise ValueError("assets: give a fleet size >= 1 or a list of distinct names")
        for k, ev in enumerate(self.events):
            if ev.asset not in names:
                raise ValueError(f"events.{k}: asset {ev.asset!r} is not in the campaign's fleet {names}")
            if ev.at >= self.duration_s:
                raise ValueError(f"events.{k}: at={ev.at:g} s is not before duration_s={self.duration_s:g}")
        return self

    @property
    def asset_names(self) -> list[str]:
        """The fleet's asset ids (``<asset_prefix>-1`` .. when ``assets`` is a number)."""
        if isinstance(self.assets, int):
            return [f"{self.asset_prefix}-{i + 1}" for i in range(self.assets)]
        return list(self.assets)

    def faults_covered(self) -> set[str]:
        """Faults some event injects with a severity above 0."""
        return {ev.fault for ev in self.events if ev.fault is not None and (ev.severity or 0) > 0}

    def operating_points(self) -> set[tuple[float | None, float | None]]:
        """Distinct operating points the script sets (the nominal start not counted)."""
        return {
            (ev.operating_point.speed_rpm, ev.operating_point.load_area_factor)
            for ev in self.events
            if ev.operating_point is not None
        }


class CampaignError(FedtwinError, ValueError):
    """An invalid campaign file (the CLI exits 2 with this one line)."""


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "campaign"
    msg = str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {msg}"


def parse_campaign(data: Any, source: str = "campaign") -> Campaign:
    """Validate parsed YAML as a campaign.

    Raises
    ------
    FedtwinError
        One line: ``<source>: <field>: <what is wrong>``.
    """
    if not isinstance(data, Mapping):
        raise CampaignError(f"{source}: expected a mapping of campaign fields, got {type(data).__name__}")
    try:
        return Campaign.model_validate(dict(data))
    except ValidationError as exc:
        raise CampaignError(f"{source}: {_first_error(exc)}") from None


def load_campaign(path: str | Path) -> Campaign:
    """Read and validate a campaign YAML file (one-line :class:`CampaignError` when it is not valid)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise CampaignError(f"cannot read campaign file {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CampaignError(f"{path}: not valid YAML ({first})") from None
    return parse_campaign(data, str(path))


class Schedule:
    """The campaign's events in time order, handed out as the plant's clock passes them."""

    def __init__(self, events: Sequence[Event]) -> None:
        self.events = sorted(events, key=lambda e: e.at)  # stable: same-time events keep the file's order
        self.next = 0

    def due(self, sim_t: float) -> list[Event]:
        """Events with ``at`` <= ``sim_t`` not handed out yet (the chunk starting at ``sim_t`` gets them)."""
        out = []
        # A tiny tolerance: at=5.0 belongs to the chunk that starts at 5.0 even if ticks x 0.1 is 4.9999999.
        while self.next < len(self.events) and self.events[self.next].at <= sim_t + 1e-9:
            out.append(self.events[self.next])
            self.next += 1
        return out

    @property
    def done(self) -> bool:
        """Every event was handed out."""
        return self.next >= len(self.events)


def expected_windows(duration_s: float, window_s: float) -> int:
    """Whole windows one asset yields in ``duration_s`` of plant time."""
    return math.floor(duration_s / window_s + 1e-9)
