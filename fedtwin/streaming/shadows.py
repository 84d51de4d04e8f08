"""Shadow slots of a scorer: models scored on every window beside the champion, which never alert.

Each slot named in ``Settings.shadow_models`` follows its own signed pointer in the model store
(``ModelStore.load_serving(current, slot=NAME)``): a newly published version is verified, built, probed on one
plausible window and swapped in between batches, exactly like the champion. What differs is failure: a
shadow whose pointer or record does not verify (bad signature, NaN arrays, a replayed or downgraded pointer),
or whose classifier does not fit the features, is *dropped* (the slot scores nothing) with one logged reason,
because scoring an older version under the slot would mislead whoever evaluates the new one; the champion is
never affected. A version refused once is tried again after ``retry_s`` or when the slot's pointer changes.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from fedtwin.errors import InvalidModel
from fedtwin.streaming.scoring import ActiveModel, ScoringEngine

#: ``(verified record, version) -> ActiveModel`` (the scorer's builder and probe), raising when unusable.
Activate = Callable[[Any, int], ActiveModel]


class ShadowSlots:
    """Keep ``engine.shadows`` in step with the slots' pointers in the store.

    Parameters
    ----------
    slots : sequence of str
        Shadow slot names to serve (``Settings.shadow_sources()`` keys).
    engine : ScoringEngine
        Engine whose shadows are set and dropped.
    activate : Activate
        Builds and probes the classifier of a verified record.
    logger : logging.Logger
        Where refusals (once per reason and slot) and swaps are logged.
    retry_s : float
        A refused version is not loaded again for this long (unless the pointer moves).
    """

    def __init__(
        self,
        slots: Sequence[str],
        engine: ScoringEngine,
        activate: Activate,
        logger: logging.Logger,
        retry_s: float = 30.0,
    ) -> None:
        self.slots = tuple(slots)
        self.engine = engine
        self._activate = activate
        self._log = logger
        self.retry_s = retry_s
        self._problem: dict[str, str] = {}
        self._refused: dict[str, tuple[int, float]] = {}  # slot -> (version, when refused)
        self.reloads = 0
        self.rejections = 0
        self.predict_failures = 0

    def versions(self) -> dict[str, int]:
        """Version each slot scores with now (slots without a model are absent)."""
        return {s: m.version for s, m in self.engine.shadows.items()}

    def reload(self, store: Any) -> None:
        """Check every slot's pointer and swap, keep or drop its model; Redis connection errors propagate."""
        if self.slots and not callable(getattr(store, "pointer", None)):
            self._refuse("*", "the model store has no shadow pointers; shadows are not served")
            return
        for slot in self.slots:
            self._reload_one(store, slot)

    def _reload_one(self, store: Any, slot: str) -> None:
        current = self.engine.shadows.get(slot)
        ptr = None
        try:
            ptr = store.pointer(slot)
            if ptr is None:
                self._drop(slot, "no pointer (not published, or cleared)", error=False)
                return
            refused = self._refused.get(slot)
            if refused is not None and refused[0] == ptr.version and self._recent(refused[1]):
                return
            stored = store.load_serving(None if current is None else current.version, slot=slot)
        except InvalidModel as exc:
            if ptr is not None:  # verifying a record is costly: not again before retry_s
                self._refused[slot] = (ptr.version, time.monotonic())
            self._drop(slot, f"refused ({exc})")
            return
        if stored is None:
            return
        self._swap(slot, stored, current)

    def _recent(self, when: float) -> bool:
        return time.monotonic() - when < self.retry_s

    def _swap(self, slot: str, stored: Any, current: ActiveModel | None) -> None:
        version = int(stored.version)
        try:
            active = dataclasses.replace(self._activate(stored, version), name=slot)
        except Exception as exc:  # a record that verifies but does not fit this scorer's features
            self._refused[slot] = (version, time.monotonic())
            self._drop(slot, f"version {version} refused ({type(exc).__name__}: {exc})")
            return
        self.engine.set_shadow(slot, active)
        self._problem.pop(slot, None)
        self._refused.pop(slot, None)
        self.reloads += 1
        was = None if current is None else current.version
        self._log.info("shadow %s scores with model version %d (was %s)", slot, version, was)

    def _drop(self, slot: str, reason: str, *, error: bool = True) -> None:
        """Stop scoring ``slot`` and log why, once per distinct reason."""
        had = self.engine.shadows.pop(slot, None)
        if self._problem.get(slot) == reason:
            return
        self._problem[slot] = reason
        if error:
            self.rejections += 1
            self._log.error("shadow %s dropped: %s; the champion keeps serving", slot, reason)
        elif had is not None:
            self._log.info("shadow %s stopped: %s", slot, reason)

    def _refuse(self, slot: str, reason: str) -> None:
        if self._problem.get(slot) != reason:
            self._problem[slot] = reason
            self._log.error("%s", reason)

    def predict_failed(self, errors: dict[str, str]) -> None:
        """Count shadows whose scoring failed in a batch (their decisions of it are lost); log each distinct
        reason once per slot."""
        for slot, reason in errors.items():
            self.predict_failures += 1
            text = f"scoring failed ({reason})"
            if self._problem.get(slot) != text:
                self._problem[slot] = text
                self._log.error("shadow %s: %s; its decisions of this batch are lost", slot, text)
