"""What serves, and how to put the registry's champion (or any version) back into serving.

``fedtwin model status`` compares MLflow's champion with what Redis serves; ``fedtwin model publish``
re-publishes a registered version to Redis (signed, with its drift reference) after a restart lost Redis or
when serving and registry disagree; ``fedtwin model rollback --to N`` serves an older stored version through a
pointer signed as a rollback (scorers refuse a lower version without it).

``fedtwin model publish --shadow NAME`` publishes a version to shadow slot NAME instead (its own signed
pointer): scorers listing NAME in ``shadow_models`` score every window with it beside the champion and write
its decisions to the decision topic, without it ever raising an alert; ``fedtwin model unshadow NAME``
stops it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fedtwin.errors import FedtwinError, InvalidModel
from fedtwin.training.promotion import CHAMPION

if TYPE_CHECKING:
    from fedtwin.settings import Settings

FIX_NO_MODEL = "run `fedtwin model publish` (re-publish MLflow's champion) or `fedtwin train`"

# Imports left inside functions are those `fedtwin --help` must not pay (the CLI imports this module for its
# model commands); measured after fedtwin.app.cli's imports, min of 3 fresh processes:
# fedtwin.adapters.tracking 1.5 s (MLflow), fedtwin.data.datasets 1.4 s (plant_models),
# fedtwin.adapters.model_store 0.26 s, fedtwin.settings 0.14 s. `fedtwin --help` takes ~0.25 s in all.


@dataclass(frozen=True)
class ShadowStatus:
    """One shadow slot: what its pointer names and whether scorers are configured to serve it."""

    slot: str
    version: int | None  # Redis version its pointer names (None: no pointer, or an invalid one)
    registry_version: int | None
    configured: bool  # listed in Settings.shadow_models (else scorers ignore it)
    problem: str | None = None

    def line(self) -> str:
        """What ``fedtwin model status`` prints for the slot (pure)."""
        if self.version is None:
            what = "nothing" + (f" ({self.problem})" if self.problem else "")
        else:
            what = f"Redis v{self.version} (registry v{self.registry_version})"
        note = "" if self.configured else " [not in shadow_models: not scored]"
        return f"shadow {self.slot}: {what}{note}"


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
    shadows : tuple of ShadowStatus
        Every configured or published shadow slot.
    """

    champion: int | None
    serving: int | None
    serving_registry_version: int | None
    problem: str | None = None
    shadows: tuple[ShadowStatus, ...] = ()

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
        shadows = [sh.line() for sh in self.shadows]
        return [f"MLflow champion: {champ}", f"serving: {served}", *shadows, f"status: {verdict}"]


def model_status(settings: Settings) -> ModelStatus:
    """Read MLflow's champion and Redis' serving pointer (both verified)."""
    # lazy: MLflow and the model store, 1.5 s on `fedtwin --help`; see the note at the top
    from fedtwin.adapters import tracking
    from fedtwin.adapters.model_store import ModelStore

    tracking.configure(settings)
    champion = tracking.alias_version(settings.registered_model, CHAMPION)
    store = ModelStore.from_settings(settings)
    shadows = shadow_statuses(settings, store)
    try:
        ptr = store.pointer()  # read and verified once
        stored = None if ptr is None else store.load(ptr.version)
    except InvalidModel as exc:
        return ModelStatus(champion, None, None, str(exc), shadows)
    if stored is None:
        return ModelStatus(champion, None, None, shadows=shadows)
    return ModelStatus(champion, stored.version, _registry_version(stored), shadows=shadows)


def _registry_version(stored: Any) -> int | None:
    reg = stored.meta.get("registry_version")
    return reg if isinstance(reg, int) else None


def shadow_statuses(settings: Settings, store: Any) -> tuple[ShadowStatus, ...]:
    """Status of every shadow slot configured in ``settings`` or holding a pointer in ``store``."""
    configured = settings.shadow_sources()
    out = []
    for slot in sorted(set(configured) | set(store.shadow_slots())):
        try:
            ptr = store.pointer(slot)
            stored = None if ptr is None else store.load(ptr.version)
        except InvalidModel as exc:
            out.append(ShadowStatus(slot, None, None, slot in configured, str(exc)))
            continue
        version = None if stored is None else stored.version
        reg = None if stored is None else _registry_version(stored)
        out.append(ShadowStatus(slot, version, reg, slot in configured))
    return tuple(out)


def shadow_source(settings: Settings, shadow: str, version: int | None) -> tuple[int | None, str]:
    """Registry version to publish to shadow slot ``shadow`` (None: read the alias) and how it was chosen:
    ``version`` when given, else the version ``shadow_models`` names for the slot, else the MLflow alias
    named like the slot (``challenger`` by default).

    Raises
    ------
    FedtwinError
        When ``shadow`` is not a valid slot name.
    """
    from fedtwin.settings import parse_shadow_entry  # lazy: 0.14 s, see the note at the top

    try:
        parse_shadow_entry(shadow)
    except ValueError as exc:
        raise FedtwinError(str(exc)) from None
    if version is not None:
        return version, f"version {version}"
    pinned = settings.shadow_sources().get(shadow)
    if pinned is not None:
        return pinned, f"version {pinned} (shadow_models)"
    return None, f"alias {shadow!r}"


def publish(settings: Settings, version: int | None = None, *, shadow: str | None = None) -> int:
    """Publish a registered version (default: the champion) to Redis, signed and with its drift reference;
    returns the new Redis version, now served.

    With ``shadow`` the version goes to that shadow slot instead (the champion is untouched): ``version``,
    else the version ``shadow_models`` pins for the slot, else the MLflow alias named like the slot.
    """
    # lazy: MLflow, the model store and the data sets, 2.4 s on `fedtwin --help`; see the note at the top
    from mlflow import MlflowClient

    from fedtwin.adapters import tracking
    from fedtwin.adapters.model_store import ModelStore
    from fedtwin.data.datasets import NOMINAL_LOAD, NOMINAL_SPEED_RPM, reference_windows

    alias, how = CHAMPION, "champion"
    if shadow is not None:  # validated before anything is read
        version, how = shadow_source(settings, shadow, version)
        alias = shadow
    tracking.configure(settings)
    name = settings.registered_model
    if version is None:
        version = tracking.alias_version(name, alias)
        if version is None:
            fix = "run `fedtwin train` first" if shadow is None else "pass --version"
            raise FedtwinError(f"registered model {name!r} has no {how}: {fix}")
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
    store.promote(stored, slot=shadow or "")  # a new version, so never lower than the slot's
    return stored


def unshadow(settings: Settings, shadow: str) -> bool:
    """Delete shadow slot ``shadow``'s pointer (scorers stop scoring it); False when it had none."""
    from fedtwin.adapters.model_store import ModelStore  # lazy: 0.26 s, see the note at the top

    shadow_source(settings, shadow, 1)  # validates the name
    return ModelStore.from_settings(settings).clear_shadow(shadow)


def rollback(settings: Settings, to: int) -> int:
    """Serve the stored Redis version ``to`` again (a pointer signed as an explicit rollback)."""
    from fedtwin.adapters.model_store import ModelStore  # lazy: 0.26 s, see the note at the top

    store = ModelStore.from_settings(settings)
    if to not in store.versions():
        raise FedtwinError(f"Redis has no model version {to}; stored: {store.versions()}")
    store.rollback_to(to)
    return to
