"""What serves, and how to put the registry's champion (or any version) back into serving.

``fedtwin model status`` compares MLflow's champion with what Redis serves; ``fedtwin model publish``
re-publishes a registered version to Redis (signed, with its drift reference) after a restart lost Redis or
when serving and registry disagree; ``fedtwin model rollback --to N`` serves an older stored version through a
pointer signed as a rollback (scorers refuse a lower version without it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fedtwin.errors import FedtwinError, InvalidModel
from fedtwin.training.promotion import CHAMPION

if TYPE_CHECKING:
    from fedtwin.settings import Settings

FIX_NO_MODEL = "run `fedtwin model publish` (re-publish MLflow's champion) or `fedtwin train`"


@dataclass(frozen=True)
class ModelStatus:
    """MLflow's champion and what Redis serves.

    Attributes
    ----------
    champion : int or None
        Registry version behind the ``champion`` alias (None: no champion, or MLflow unreachable).
    serving : int or None
        Redis version the signed pointer names (None: nothing promoted, or the pointer is invalid).
    serving_registry_version : int or None
        The registry version the served record came from.
    problem : str or None
        Why serving could not be read (an invalid pointer or record), if so.
    """

    champion: int | None
    serving: int | None
    serving_registry_version: int | None
    problem: str | None = None

    @property
    def agree(self) -> bool:
        """True when Redis serves the registry's champion."""
        return self.champion is not None and self.serving_registry_version == self.champion

    def lines(self) -> list[str]:
        """What ``fedtwin model status`` prints (pure)."""
        champ = "none" if self.champion is None else f"v{self.champion}"
        if self.serving is None:
            served = "nothing" + (f" ({self.problem})" if self.problem else "")
        else:
            served = f"Redis v{self.serving} (registry v{self.serving_registry_version})"
        verdict = (
            "agree"
            if self.agree
            else ("no champion to serve" if self.champion is None else f"DISAGREE: {FIX_NO_MODEL}")
        )
        return [f"MLflow champion: {champ}", f"serving: {served}", f"status: {verdict}"]


def model_status(settings: Settings) -> ModelStatus:
    """Read MLflow's champion and Redis' serving pointer (both verified)."""
    from fedtwin.adapters import tracking
    from fedtwin.adapters.model_store import ModelStore

    tracking.configure(settings)
    champion = tracking.alias_version(settings.registered_model, CHAMPION)
    store = ModelStore.from_settings(settings)
    try:
        ptr = store.pointer()  # read and verified once
        stored = None if ptr is None else store.load(ptr.version)
    except InvalidModel as exc:
        return ModelStatus(champion, None, None, str(exc))
    if stored is None:
        return ModelStatus(champion, None, None)
    reg = stored.meta.get("registry_version")
    return ModelStatus(champion, stored.version, reg if isinstance(reg, int) else None)


def publish(settings: Settings, version: int | None = None) -> int:
    """Publish a registered version (default: the champion) to Redis, signed and with its drift reference;
    returns the new Redis version, now served."""
    from mlflow import MlflowClient

    from fedtwin.adapters import tracking
    from fedtwin.adapters.model_store import ModelStore
    from fedtwin.data.datasets import NOMINAL_LOAD, NOMINAL_SPEED_RPM, reference_windows

    tracking.configure(settings)
    name = settings.registered_model
    if version is None:
        version = tracking.alias_version(name, CHAMPION)
        if version is None:
            raise FedtwinError(f"registered model {name!r} has no champion: run `fedtwin train` first")
    try:
        arrays, meta = tracking.load_arrays(name, str(version))
        tags = MlflowClient().get_model_version(name, str(version)).tags
    except Exception as exc:  # MLflow's own errors: one line naming what was asked
        raise FedtwinError(f"cannot read {name} v{version} from MLflow: {exc}") from exc
    speed = float(tags.get("speed_rpm", NOMINAL_SPEED_RPM))
    load = float(tags.get("load_area_factor", NOMINAL_LOAD))
    store = ModelStore.from_settings(settings)
    meta = {**meta, "registered_model": name, "registry_version": int(version)}
    stored = store.put(arrays, meta)
    # The drift monitor compares the stream with healthy windows at the model's operating point.
    reference = reference_windows(speed, load, settings.window_s)
    store.put_reference(stored, reference, list(meta["feature_names"]))
    store.promote(stored)  # a new version, so never lower than the serving one
    return stored


def rollback(settings: Settings, to: int) -> int:
    """Serve the stored Redis version ``to`` again (a pointer signed as an explicit rollback)."""
    from fedtwin.adapters.model_store import ModelStore

    store = ModelStore.from_settings(settings)
    if to not in store.versions():
        raise FedtwinError(f"Redis has no model version {to}; stored: {store.versions()}")
    store.rollback_to(to)
    return to
