"""Streaming commands (``inject``, ``plant``, ``score``); the main CLI mounts ``app``."""

from __future__ import annotations

import json
import logging
import signal
import threading
from typing import TYPE_CHECKING, Annotated

import typer

from fedtwin.errors import FedtwinError

if TYPE_CHECKING:
    from fedtwin.settings import Settings

# Imports left inside commands are those `fedtwin --help` (which mounts this app) must not pay; measured after
# fedtwin.app.cli's imports, min of 3 fresh processes: fedtwin.settings 0.77 s, fedtwin.streaming.live 0.88 s
# (plant_models, Kafka, Redis; re-measured on a quieter box after its imports were hoisted: 0.68 s before),
# fedtwin.streaming.scorer 8.4 s (scikit-learn through federated.model).

app = typer.Typer(help="Live plant, fault injection and the streaming scorer.", no_args_is_help=True)

# The fault names come from plant_models.spec through fedtwin.streaming.live, imported inside the commands:
# every
# `fedtwin` command imports this module, and importing plant_models (numpy) here would about double
# `fedtwin --help` (measured: `import typer` 0.11-0.17 s, `import typer, plant_models` 0.30-0.38 s).


def _settings() -> Settings:
    from fedtwin.settings import get_settings  # lazy: 0.77 s, see the note at the top

    return get_settings()


def _fail(exc: Exception) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=1)


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def inject(
    asset: Annotated[str, typer.Option(help="Asset id, e.g. pump-1")],
    fault: Annotated[
        str | None, typer.Option(help="Fault name, e.g. leak (the asset's faults: plant_models.spec.FAULTS)")
    ] = None,
    severity: Annotated[float, typer.Option(min=0.0, max=1.0, help="0..1 of the reference range")] = 0.5,
    clear: Annotated[bool, typer.Option("--clear", help="Remove every fault from the asset")] = False,
) -> None:
    """Inject (or with --clear remove) a fault on a running live plant; effective from its next chunk."""
    from fedtwin.streaming import live  # lazy: 0.88 s, see the note at the top

    try:
        if clear:
            state = live.clear(_settings(), asset)
        elif fault is None:
            raise FedtwinError(f"give --fault {'|'.join(live.FAULTS)} (and --severity), or --clear")
        else:
            state = live.inject(_settings(), asset, fault, severity)
    except FedtwinError as exc:
        _fail(exc)
        return
    typer.echo(json.dumps({"asset": asset, **state}))


@app.command()
def plant(
    seconds: Annotated[float, typer.Option(help="Simulated seconds per asset")] = 60.0,
    assets: Annotated[int, typer.Option(min=1, help="Number of pumps (pump-1..pump-N)")] = 4,
    speedup: Annotated[float, typer.Option(help="x real time; 0 = as fast as possible")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the first pump (others +1, +2, ...)")] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the live plant: sensor chunks to Kafka, faults from `inject`."""
    from fedtwin.streaming import live  # lazy: 0.88 s, see the note at the top

    _logging(verbose)
    stop = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: stop.set())
    try:
        stats = live.run_plant(
            _settings(), assets=assets, duration_s=seconds, speedup=speedup, seed=seed, stop_event=stop
        )
    except FedtwinError as exc:
        _fail(exc)
        return
    typer.echo(json.dumps(stats.as_dict()))


@app.command()
def score(
    seconds: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: run until signal)")
    ] = None,
    max_messages: Annotated[int | None, typer.Option(help="Stop after this many messages")] = None,
    idle_exit: Annotated[
        float | None, typer.Option(help="Stop after this many seconds without messages")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Messages per consume batch")] = 1000,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus /metrics on this port")] = None,
    features_stream: Annotated[bool, typer.Option(help="XADD window features for the drift monitor")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the scorer (consumer group member) until --seconds/--max-messages/--idle-exit or SIGINT/SIGTERM.

    Exit codes: 0 at one of those limits (Redis or Kafka outages pause it, never end it), 1 on a problem to
    act on (no valid model, a Kafka error retrying cannot fix), 2 on an unexpected error.
    """
    from fedtwin.streaming.scorer import run_scorer  # lazy: 8.4 s, see the note at the top

    _logging(verbose)
    settings = _settings()
    port = metrics_port if metrics_port is not None else settings.scorer_metrics_port
    try:
        stats = run_scorer(
            settings,
            max_seconds=seconds,
            max_messages=max_messages,
            idle_exit_s=idle_exit,
            metrics_port=port,
            handle_signals=True,
            batch_size=batch_size,
            publish_features=features_stream,
        )
    except FedtwinError as exc:
        _fail(exc)
        return
    except Exception as exc:  # a bug, not an outage (those pause the scorer): exit 2, traceback logged
        logging.getLogger("fedtwin.streaming.scorer").exception("scorer failed")
        typer.echo(f"error: scorer failed unexpectedly ({type(exc).__name__}: {exc})", err=True)
        raise typer.Exit(code=2) from None
    typer.echo(json.dumps(stats))


if __name__ == "__main__":
    app()
