"""Sites as Prefect workers: the executor that runs each site call on the site's own deployment, and the
commands that set a site up (work pool, deployment, result storage, worker).

:class:`DeploymentExecutor` implements :class:`federated.executor.SiteExecutor`: every call becomes a run of
``fedtwin-site-round/<site>`` started with ``run_deployment`` as a subflow of the training run (one run per
site and round in the Prefect UI), all calls of a round at once. A run that does not finish within the
round's timeout (worker down, slow, no worker for the pool) is cancelled and becomes a
:class:`ClientFailure`, as does a run that failed; the round loop's quorum decides the rest.

The result comes back through Prefect's result storage (a ``prefect-redis`` ``RedisDatabase`` block the
site's worker writes to). The coordinator reads the stored record from Redis itself: Prefect's own
``State.result()`` would deserialize with whatever serializer the record names, including pickle, and a
site is not trusted that far. Only a JSON record whose value is a :mod:`federated.codec` payload is accepted.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import redis
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.client.schemas.objects import WorkPoolStatus
from prefect.deployments import run_deployment
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.states import Cancelled, Cancelling
from prefect_redis import RedisDatabase

from federated import codec
from federated.executor import SiteCall
from federated.strategy.base import ClientFailure
from fedtwin.errors import FedtwinError
from fedtwin.training.sites import SITE_FLOW, DatasetSpec, request_payload

if TYPE_CHECKING:
    from prefect.client.schemas.objects import FlowRun, State

    from fedtwin.settings import Settings

logger = logging.getLogger(__name__)

#: The project root: the deployments' source (the worker runs the flow from this checkout).
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # fedtwin/training/ -> the project
ENTRYPOINT = "flows/site.py:site_round"


def pool_name(site: str) -> str:
    """The work pool of one site."""
    return f"fedtwin-site-{site}"


class SiteRunError(RuntimeError):
    """A site's run did not produce a usable result (failed, timed out, result missing or invalid).

    ``retryable``: the infrastructure failed (the run crashed before or outside the site's code), so the same
    call may be started again.
    """

    def __init__(self, message: str, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


def read_result_record(
    raw: bytes | None, serializer_type: str | None, max_bytes: int = codec.MAX_BYTES
) -> Any:
    """Decode a result a site stored: JSON serializer only, the value a :mod:`federated.codec` payload.

    Parameters
    ----------
    raw : bytes or None
        The stored bytes (``None``: the key is missing). With a storage block Prefect stores the serialized
        value alone (its metadata travels in the run's state); a whole record (metadata and result) is
        accepted too.
    serializer_type : str or None
        The serializer the run's state names; anything but ``"json"`` is refused (pickle would run code).
    """
    if raw is None:
        raise SiteRunError("result not found in the result storage (is the site's worker configured for it?)")
    if serializer_type != "json":
        raise SiteRunError(
            f"result serialized with {serializer_type!r}, not json; refusing to deserialize it"
        )
    if len(raw) > max_bytes:
        raise SiteRunError(f"result of {len(raw)} bytes exceeds the limit of {max_bytes}")
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SiteRunError(f"result is not JSON: {exc}") from None
    if isinstance(value, dict) and "metadata" in value:  # a whole record
        meta = value["metadata"] if isinstance(value["metadata"], dict) else {}
        if not isinstance(meta.get("serializer"), dict) or meta["serializer"].get("type") != "json":
            raise SiteRunError("result record is not JSON-serialized; refusing to deserialize it")
        inner = value.get("result")
        value = json.loads(inner) if isinstance(inner, str) else None
    # The site flow returns a codec payload (a str), which the JSON serializer stored as a JSON string.
    if not isinstance(value, str):
        raise SiteRunError("result is not a site payload")
    try:
        return codec.decode(value, max_bytes)
    except codec.CodecError as exc:
        raise SiteRunError(f"invalid site result: {exc}") from None


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, SiteRunError) else f"{type(exc).__name__}: {exc}"


class DeploymentExecutor:
    """Runs site calls as runs of each site's deployment on the site's own work pool.

    Parameters
    ----------
    dataset : DatasetSpec
        The data set every site loads or simulates (the training run's profile and operating point).
    redis_client : redis.Redis
        A client of the Redis the sites' result storage writes to (keys are read once, then deleted).
    default_timeout_s : float
        Timeout of a call when the round loop gives none: a run never waits forever.
    poll_s : float
        How often a waiting call asks the API for its run's state.
    pickup_timeout_s : float
        A run still scheduled after this long (no worker of the site's pool took it: the site is down) fails
        at once, without waiting for the call's whole timeout and without a new run.
    retries : int
        New runs of a call whose run crashed (worker could not start it) or whose API request failed, while
        the call's timeout lasts; a run that failed in the site's code is not retried.
    """

    def __init__(
        self,
        dataset: DatasetSpec,
        redis_client: redis.Redis,
        default_timeout_s: float = 300.0,
        poll_s: float = 1.0,
        retries: int = 2,
        pickup_timeout_s: float = 30.0,
    ) -> None:
        self.dataset = dataset
        self.redis = redis_client
        self.default_timeout_s = default_timeout_s
        self.poll_s = poll_s
        self.retries = retries
        self.pickup_timeout_s = pickup_timeout_s

    def run(
        self, calls: Sequence[SiteCall], timeout_s: float | None = None
    ) -> tuple[dict[str, Any], list[ClientFailure]]:
        """Start every call's run at once and wait for all (each up to the timeout)."""
        timeout = self.default_timeout_s if timeout_s is None else timeout_s
        results: dict[str, Any] = {}
        failures: list[ClientFailure] = []
        if not calls:
            return results, failures
        lock = threading.Lock()

        def one(call: SiteCall) -> None:
            try:
                res = self._call_retrying(call, timeout)
            except Exception as exc:  # a site's failure must not take the round down: the quorum decides
                with lock:
                    failures.append(ClientFailure(call.site, _reason(exc)))
            else:
                with lock:
                    results[call.site] = res

        # Each thread gets a copy of this context, so run_deployment sees the training run as its parent.
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            for f in [pool.submit(contextvars.copy_context().run, one, c) for c in calls]:
                f.result()
        order = {c.site: k for k, c in enumerate(calls)}
        failures.sort(key=lambda f: order[f.client_id])
        return {c.site: results[c.site] for c in calls if c.site in results}, failures

    def _call_retrying(self, call: SiteCall, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        for attempt in range(self.retries + 1):
            left = deadline - time.monotonic()
            try:
                return self._call(call, left)
            except (SiteRunError, httpx.HTTPError) as exc:
                retryable = getattr(exc, "retryable", True)  # an HTTP error: the API, not the site
                if not retryable or attempt == self.retries or deadline - time.monotonic() < self.poll_s:
                    raise
                logger.warning(
                    "site %s %s r%d: %s; starting it again", call.site, call.op, call.server_round, exc
                )
        raise AssertionError("unreachable")

    def _call(self, call: SiteCall, timeout: float) -> Any:
        params = {
            "site": call.site,
            "op": call.op,
            "server_round": call.server_round,
            "payload": request_payload(call, self.dataset),
        }
        try:
            run: FlowRun = run_deployment(  # type: ignore[assignment]  # sync here: never a coroutine
                f"{SITE_FLOW}/{call.site}",
                parameters=params,
                timeout=0,  # returns once the run exists; _wait watches pick-up and the timeout
                flow_run_name=f"{call.site}-{call.op}-r{call.server_round}",
                as_subflow=True,
            )
        except ObjectNotFound:
            raise SiteRunError(
                f"no deployment {SITE_FLOW}/{call.site}: "
                f"start the site with `fedtwin site start --site {call.site}`"
            ) from None
        state, late = self._wait(run.id, timeout)
        if late is not None:
            _cancel(run.id, state)
            raise SiteRunError(f"{late}; run {run.id} cancelled")
        assert state is not None  # _wait returns a final state or a reason
        if not state.is_completed():
            raise SiteRunError(f"site run {state.name}: {state.message or 'no message'}", state.is_crashed())
        key = getattr(state.data, "storage_key", None)
        if not isinstance(key, str) or not key:
            raise SiteRunError("site run completed without a persisted result")
        raw = self.redis.get(key)
        self.redis.delete(key)  # read once: results are not kept in Redis after the round took them
        return read_result_record(raw, getattr(getattr(state.data, "serializer", None), "type", None))

    def _wait(self, flow_run_id: Any, timeout: float) -> tuple[State[Any] | None, str | None]:
        """Poll the run until it is final; or (its last state, why it is late) once nobody picked it up
        within the pick-up timeout or it did not finish within ``timeout``."""
        start = time.monotonic()
        pickup = min(self.pickup_timeout_s, timeout)
        with get_client(sync_client=True) as client:
            while True:
                state = client.read_flow_run(flow_run_id).state
                if state is not None and state.is_final():
                    return state, None
                waited = time.monotonic() - start
                waiting = state is None or state.is_scheduled()
                if waiting and waited >= pickup:
                    return (
                        state,
                        f"no worker picked it up within {pickup:g} s (is the site's worker running?)",
                    )
                if waited >= timeout:
                    return (
                        state,
                        f"timed out after {timeout:g} s ({'not started' if waiting else 'still running'})",
                    )
                time.sleep(min(self.poll_s, max(0.0, timeout - waited)))


def _cancel(flow_run_id: Any, state: Any) -> None:
    """Cancel a run that outlived its timeout (scheduled: cancelled now; running: the worker stops it)."""
    waiting = state is None or state.is_scheduled() or state.is_pending()
    new: State[Any] = Cancelled() if waiting else Cancelling()
    try:
        with get_client(sync_client=True) as client:
            client.set_flow_run_state(flow_run_id, new, force=True)
    except Exception as exc:  # the timeout is the failure to report; a busy API must not replace it
        logger.warning("could not cancel site run %s: %s", flow_run_id, _reason(exc))


def redis_client(settings: Settings) -> redis.Redis:
    """A Redis client for the site results (the configured URL and password)."""
    password = settings.redis_password.get_secret_value() if settings.redis_password else None
    return redis.Redis.from_url(settings.redis_url, password=password)


def executor_from_settings(settings: Settings, dataset: DatasetSpec) -> DeploymentExecutor:
    """The deployment executor configured by ``settings`` (site timeout and poll interval)."""
    return DeploymentExecutor(
        dataset,
        redis_client(settings),
        settings.site_timeout_s,
        settings.site_poll_s,
        pickup_timeout_s=settings.site_pickup_timeout_s,
    )


# --- site setup (the site's side: `fedtwin site start`) ---------------------------------------------------


def ensure_result_block(settings: Settings) -> str:
    """Create the Redis result-storage block if missing; returns its slug for PREFECT_RESULTS_*."""
    name = settings.site_result_block
    try:
        RedisDatabase.load(name)
    except ValueError:  # not saved yet
        parts = urlsplit(settings.redis_url)
        if parts.scheme not in ("redis", "rediss"):
            raise FedtwinError(
                f"site results need a redis:// or rediss:// URL, got {parts.scheme}://"
            ) from None
        block = RedisDatabase(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 6379,
            db=int(parts.path.strip("/") or 0),
            username=parts.username or None,
            password=settings.redis_password,
            ssl=parts.scheme == "rediss",
            key_ttl=24 * 3600,  # a result nobody read (coordinator gone) does not stay in Redis for ever
        )
        try:
            block.save(name)
        except ValueError:  # another site saved it meanwhile (sites starting together): theirs stands
            RedisDatabase.load(name)
    return f"redis-database/{name}"


def ensure_site_deployment(site: str) -> str:
    """Create the site's process work pool if missing and (re)apply its deployment; returns the pool name."""
    pool = pool_name(site)
    with get_client(sync_client=True) as client, contextlib.suppress(ObjectAlreadyExists):
        client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
    site_flow = flow.from_source(source=str(PROJECT_ROOT), entrypoint=ENTRYPOINT)
    site_flow.deploy(  # type: ignore[union-attr]
        name=site, work_pool_name=pool, build=False, push=False, print_next_steps=False
    )
    return pool


def worker_command(
    site: str, data_dir: Path, settings: Settings, block_slug: str
) -> tuple[list[str], dict[str, str]]:
    """The ``prefect worker start`` command line and environment of a site's worker."""
    env = dict(os.environ)
    env.update(
        {
            # The flow runs the worker starts inherit this: the site's data never comes from the coordinator.
            "FEDTWIN_DATA_DIR": str(data_dir.resolve()),
            "PREFECT_RESULTS_DEFAULT_STORAGE_BLOCK": block_slug,
            "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
            "PREFECT_RESULTS_DEFAULT_SERIALIZER": "json",
            # Prefect's default 10 s poll would add up to 10 s to every site call of every round.
            "PREFECT_WORKER_QUERY_SECONDS": f"{settings.site_poll_s:g}",
            "PREFECT_WORKER_PREFETCH_SECONDS": "10",
        }
    )
    cmd = [sys.executable, "-m", "prefect", "worker", "start", "--pool", pool_name(site), "--type", "process"]
    return [*cmd, "--name", f"site-{site}"], env


def start_site(
    site: str, data_dir: Path, settings: Settings, echo: Callable[[str], None] = print
) -> tuple[list[str], dict[str, str]]:
    """Set a site up (pool, deployment, result block) and return its worker's command and environment."""
    if not site or not all(c.isalnum() or c in "-_" for c in site):
        raise FedtwinError(f"invalid site id {site!r}: use letters, digits, '-' and '_'")
    try:
        block = ensure_result_block(settings)
        pool = ensure_site_deployment(site)
    except httpx.HTTPError as exc:
        raise FedtwinError(f"Prefect API at {settings.prefect_api_url}: {exc}") from None
    echo(f"site {site}: deployment {SITE_FLOW}/{site} on work pool {pool}, data in {data_dir.resolve()}")
    return worker_command(site, data_dir, settings, block)


def wait_sites_ready(sites: Sequence[str], timeout_s: float = 120.0, poll_s: float = 0.5) -> None:
    """Wait until every site has its deployment and a worker online on its pool (FedtwinError on timeout)."""
    deadline = time.monotonic() + timeout_s
    waiting = list(sites)
    with get_client(sync_client=True) as client:
        while waiting:
            still = []
            for site in waiting:
                try:
                    client.read_deployment_by_name(f"{SITE_FLOW}/{site}")
                    ready = client.read_work_pool(pool_name(site)).status == WorkPoolStatus.READY
                except ObjectNotFound:
                    ready = False
                if not ready:
                    still.append(site)
            waiting = still
            if waiting and time.monotonic() > deadline:
                raise FedtwinError(f"site workers not ready after {timeout_s:g} s: {', '.join(waiting)}")
            if waiting:
                time.sleep(poll_s)
