"""The ``fedtwin`` command line: configuration, the embedded stack, training, the live loop and the demo."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from fedtwin.app.cli_stream import app as stream_app
from fedtwin.errors import FedtwinError
from fedtwin.streaming import serving

if TYPE_CHECKING:
    from fedtwin.settings import Settings

# Imports left inside commands are those `fedtwin --help` must not pay; measured after this module's imports,
# min of 3 fresh processes on the 2-core box (python -c "import fedtwin.app.cli, time; ...; import X"):
# fedtwin.settings 0.77 s (pydantic-settings), fedtwin.adapters.stack 0.79 s, plant_models 0.50 s,
# plant_models.calibrate 0.50 s, flows.training 12.0 s and flows.demo 13.9 s (Prefect), redis 0.69 s,
# fedtwin.app.alerts_view 0.34 s (numpy). `fedtwin --help` takes ~1 s in all, most of it typer and rich.
# Measured the same way on a quieter box: fedtwin.training.site_executor 2.6 s and flows.campaign 1.8 s
# (Prefect), fedtwin.streaming.campaign 0.58 s (plant_models).

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
config_app = typer.Typer(no_args_is_help=True, help="Effective configuration.")
stack_app = typer.Typer(
    no_args_is_help=True, help="Embedded services: Kafka (Tansu), Redis, MLflow, Prefect."
)
plant_app = typer.Typer(no_args_is_help=True, help="The triplex pump plant model.")
model_app = typer.Typer(no_args_is_help=True, help="The served model: status, publish, rollback, shadows.")
campaign_app = typer.Typer(no_args_is_help=True, help="Scripted fault campaigns on the live plant.")
app.add_typer(config_app, name="config")
app.add_typer(stack_app, name="stack")
app.add_typer(plant_app, name="plant")
app.add_typer(model_app, name="model")
app.add_typer(campaign_app, name="campaign")
site_app = typer.Typer(no_args_is_help=True, help="A federated site served by its own Prefect worker.")
app.add_typer(site_app, name="site")


def _settings() -> Settings:
    from fedtwin.settings import get_settings  # lazy: 0.77 s, see the note at the top

    return get_settings()


def use_prefect_api(settings: Settings | None = None) -> None:
    """Make Prefect talk to the configured API (set before prefect is imported)."""
    settings = settings or _settings()
    # fedtwin's Settings are the one source of truth: an unrelated PREFECT_API_URL in the shell must not win.
    os.environ["PREFECT_API_URL"] = settings.prefect_api_url
    auth = settings.prefect_auth_string()
    if (
        auth is not None
    ):  # the stack started this Prefect with basic auth (else PREFECT_API_AUTH_STRING rules)
        os.environ["PREFECT_API_AUTH_STRING"] = auth
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@config_app.command("show")
def config_show() -> None:
    """Print the effective configuration, secrets masked."""
    shown = _settings().shown()
    width = max(len(k) for k in shown)
    for k, v in shown.items():
        typer.echo(f"{k.ljust(width)}  {v}")


@stack_app.command("up")
def stack_up(
    only: Annotated[list[str] | None, typer.Option("--only", help="Service(s) to bring up")] = None,
) -> None:
    """Reuse or start each service and wait until it is healthy."""
    from fedtwin.adapters import stack  # lazy: 0.79 s, see the note at the top

    services = tuple(only) if only else stack.SERVICES
    unknown = set(services) - set(stack.SERVICES)
    if unknown:
        raise FedtwinError(f"unknown service(s) {sorted(unknown)}; choose from {list(stack.SERVICES)}")
    stack.up(_settings(), services, echo=typer.echo)


@stack_app.command("status")
def stack_status() -> None:
    """Show each service, its address, and whether fedtwin started it."""
    from fedtwin.adapters import stack  # lazy: 0.79 s, see the note at the top

    for s in stack.status(_settings()):
        typer.echo(f"{s.name:10s} {s.address:32s} {stack.describe(s)}")


@stack_app.command("down")
def stack_down() -> None:
    """Stop only the services that fedtwin started."""
    from fedtwin.adapters import stack  # lazy: 0.79 s, see the note at the top

    stack.down(_settings(), echo=typer.echo)


@plant_app.command("plot")
def plant_plot(
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("out/plant_overview.png"),
) -> None:
    """Write a PNG of healthy vs each fault: pressure, flow, current, spectrum."""
    from plant_models import plot_overview  # lazy: 0.50 s, see the note at the top

    out.parent.mkdir(parents=True, exist_ok=True)
    typer.echo(str(plot_overview(out)))


@plant_app.command("calibrate")
def plant_calibrate(
    measured: Annotated[
        Path | None,
        typer.Option(help="Healthy measurement, .csv or .parquet: pressure, flow, speed, current [, time]"),
    ] = None,
    out: Annotated[Path, typer.Option(help="Parameter file (JSON) to write")] = Path("out/plant_params.json"),
    fs: Annotated[float, typer.Option(help="Sample rate of the measurement (Hz)")] = 1000.0,
    back_pressure_bar: Annotated[
        float, typer.Option(help="System back-pressure of the measurement (bar)")
    ] = 7.0,
    max_sims: Annotated[int, typer.Option(help="Simulation budget of the fit")] = 60,
) -> None:
    """Fit the healthy plant's uncertain parameters (without --measured: to the reference's facts)."""
    # lazy: plant_models and scipy.optimize, 0.50 s, see the note at the top
    from plant_models.calibrate import REFERENCE_FIT, calibrate, calibrate_measured, read_measured
    from plant_models.params import PARAMS_FILE_ENV, save_params

    if measured is None:
        typer.echo("no --measured file: calibrating to the reference pump's published calibration facts")
        result = calibrate(fit=REFERENCE_FIT, max_sims=max_sims)
    else:
        signals = read_measured(measured, fs)
        result = calibrate_measured(signals, fs, back_pressure_bar=back_pressure_bar, max_sims=max_sims)
    for line in result.report():
        typer.echo(line)
    path = save_params(out, result.params, result.record())
    typer.echo(f"wrote {path}; simulate with it: export {PARAMS_FILE_ENV}={path.resolve()}")


@app.command("train")
def train(
    strategy: Annotated[str | None, typer.Option(help="Aggregation rule (default from settings)")] = None,
    rounds: Annotated[int | None, typer.Option(help="Federated rounds")] = None,
    profile: Annotated[str, typer.Option(help="Data profile: demo (fast) or full")] = "demo",
    compare: Annotated[
        list[str] | None, typer.Option(help="Also train these rules and compare them (repeatable)")
    ] = None,
) -> None:
    """Run the training flow: simulate, validate, train per fault, federate, evaluate, register, promote."""
    use_prefect_api()
    from flows.training import training_flow  # lazy: Prefect, 12 s; after use_prefect_api() on purpose

    result = training_flow(strategy=strategy, rounds=rounds, profile=profile, compare=compare)
    reg = result["registry"]
    for name, value in result["exact_match"].items():
        typer.echo(f"{name}: exact_match={value:.4f}" + (" (best)" if name == result["best"] else ""))
    typer.echo(
        f"registered {reg['name']} v{reg['version']}; champion "
        + ("moved" if reg["promoted"] else f"kept (v{reg['previous_champion']})")
        + f"; redis_version={result['redis_version']}"
    )
    if result.get("mlflow_run_url"):
        typer.echo(f"MLflow runs of this training: {result['mlflow_run_url']}")


@site_app.command("start")
def site_start(
    site: Annotated[str, typer.Option("--site", help="Site id (e.g. leak-site0)")],
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="The site's own data directory (default: data_dir/sites)"),
    ] = None,
) -> None:
    """Create the site's work pool and deployment if missing, then run its worker (Ctrl-C stops it)."""
    use_prefect_api()
    from fedtwin.training.site_executor import start_site  # lazy: Prefect, 2.6 s; after use_prefect_api()

    settings = _settings()
    cmd, env = start_site(site, data_dir or Path(settings.data_dir) / "sites", settings, echo=typer.echo)
    sys.stdout.flush()
    # The worker replaces this process: a signal to this pid reaches the worker itself.
    os.execve(cmd[0], cmd, env)


@model_app.command("status")
def model_status() -> None:
    """MLflow's champion, what Redis serves, and whether they agree (exit 1 when they do not)."""
    status = serving.model_status(_settings())
    for line in status.lines():
        typer.echo(line)
    if not status.agree:
        raise typer.Exit(code=1)


@model_app.command("publish")
def model_publish(
    version: Annotated[
        int | None,
        typer.Option(min=1, help="Registry version (default: the champion, or the shadow's alias)"),
    ] = None,
    shadow: Annotated[
        str | None,
        typer.Option(help="Publish to this shadow slot (scored beside the champion, never alerting)"),
    ] = None,
) -> None:
    """Re-publish a registered version (default: MLflow's champion) to Redis, signed; scorers hot-swap.

    With --shadow NAME the version (default: the one shadow_models pins for NAME, else the MLflow alias NAME)
    goes to shadow slot NAME; scorers with NAME in shadow_models score it and write its decisions."""
    settings = _settings()
    served = serving.publish(settings, version, shadow=shadow)
    if shadow is None:
        typer.echo(f"Redis now serves version {served}")
        return
    typer.echo(f"shadow {shadow} now scores with Redis version {served}")
    if shadow not in settings.shadow_sources():
        typer.echo(f"note: {shadow!r} is not in shadow_models (FEDTWIN_SHADOW_MODELS): scorers ignore it")


@model_app.command("unshadow")
def model_unshadow(name: Annotated[str, typer.Argument(help="Shadow slot to stop")]) -> None:
    """Delete a shadow slot's pointer: scorers stop scoring it at their next check."""
    had = serving.unshadow(_settings(), name)
    typer.echo(f"shadow {name} stopped" if had else f"shadow {name} had no pointer")


@model_app.command("rollback")
def model_rollback(
    to: Annotated[int, typer.Option("--to", min=1, help="Stored Redis version to serve again")],
) -> None:
    """Serve an older stored version (a pointer signed as an explicit rollback, which scorers accept)."""
    typer.echo(f"Redis now serves version {serving.rollback(_settings(), to)} (rollback)")


@app.command("alerts")
def alerts(
    count: Annotated[int, typer.Option(min=1, help="How many of the latest alerts to show")] = 20,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new alerts")] = False,
) -> None:
    """The alert stream (raise/clear, asset, faults and scores, model version) as a table."""
    import redis  # lazy: 0.69 s, see the note at the top

    from fedtwin.adapters.redis_io import redis_client  # lazy: imports redis
    from fedtwin.app.alerts_view import COLUMNS, AlertRow, alert_rows  # lazy: numpy, 0.34 s

    settings = _settings()
    console = Console()

    def show(rows: list[AlertRow], header: bool) -> None:
        table = Table(*COLUMNS, show_header=header, box=None, pad_edge=False)
        for row in rows:
            table.add_row(*row.cells, style="red" if row.kind == "raise" else "green")
        console.print(table)

    stream = settings.key("alerts")
    try:
        with redis_client(settings) as client:
            latest = list(reversed(client.xrevrange(stream, count=count)))
            rows, bad = alert_rows(latest)
            if not rows:
                typer.echo(f"no alerts in {stream} yet")
            else:
                show(rows, header=True)
            if bad:
                typer.echo(f"({bad} entries of {stream} were not readable alerts)", err=True)
            last = latest[-1][0] if latest else b"$"
            while follow:
                got = client.xread({stream: last}, block=1000, count=100)
                for _name, entries in got or []:
                    rows, _bad = alert_rows(entries)
                    show(rows, header=False)
                    last = entries[-1][0]
    except KeyboardInterrupt:
        return
    except redis.RedisError as exc:  # one line, non-zero exit
        raise FedtwinError(f"cannot read alerts from Redis ({type(exc).__name__}: {exc})") from None


def _campaign_or_exit(file: Path) -> None:
    """Validate a campaign file; an invalid one is one line and exit code 2."""
    from fedtwin.streaming.campaign import CampaignError, load_campaign  # lazy: plant_models, 0.58 s

    try:
        load_campaign(file)
    except CampaignError as exc:
        typer.echo(f"fedtwin: error: {exc}", err=True)
        raise typer.Exit(code=2) from None


@campaign_app.command("check")
def campaign_check(file: Annotated[Path, typer.Argument(help="Campaign YAML file")]) -> None:
    """Validate a campaign file (exit 2 with one line naming the first problem)."""
    from fedtwin.streaming.campaign import load_campaign  # lazy: plant_models, 0.58 s

    _campaign_or_exit(file)
    spec = load_campaign(file)
    typer.echo(
        f"{file}: campaign {spec.name}: {len(spec.events)} events on {len(spec.asset_names)} assets over "
        f"{spec.duration_s:g} s; faults {sorted(spec.faults_covered())}; "
        f"{len(spec.operating_points())} operating point(s) besides the nominal one"
    )


@campaign_app.command("run")
def campaign_run(
    file: Annotated[Path, typer.Argument(help="Campaign YAML file, e.g. campaigns/standard.yaml")],
    evaluate: Annotated[
        bool, typer.Option(help="Finish with the live evaluation of every served model")
    ] = True,
    mlflow: Annotated[bool, typer.Option(help="Log the live evaluation to MLflow")] = True,
) -> None:
    """Play a campaign on a live fleet (a scorer must be running), then evaluate every model being served."""
    _campaign_or_exit(file)
    use_prefect_api()
    from flows.campaign import campaign_flow  # lazy: Prefect, 1.8 s; after use_prefect_api() on purpose

    result = campaign_flow(str(file), evaluate=evaluate, log_to_mlflow=mlflow)
    typer.echo(
        f"campaign {result['campaign']}: {result['events_applied']} events, "
        f"{result['plant']['chunks']} chunks on {len(result['assets'])} assets"
    )
    for name, m in (result.get("live") or {}).get("results", {}).items():
        cells = [f"{k}={m[k]:.4f}" if math.isfinite(m[k]) else f"{k}=nan" for k in _LIVE_COLUMNS]
        typer.echo(f"model={name} " + " ".join(cells))


_LIVE_COLUMNS = ("exact_match", "detection_delay_p50_s", "false_alarms_per_asset_hour", "windows")


@app.command("demo")
def demo(
    seconds: Annotated[float, typer.Option(help="Seconds of live data to stream")] = 24.0,
    fault_at: Annotated[float, typer.Option(help="Second at which a fault is injected")] = 10.0,
    train_first: Annotated[bool, typer.Option(help="Train before streaming")] = True,
) -> None:
    """Train, stream live data with a fault injected part-way, print the alerts and the UI addresses."""
    use_prefect_api()
    from flows.demo import run_demo  # lazy: Prefect, 14 s; after use_prefect_api() on purpose

    run_demo(seconds=seconds, fault_at=fault_at, train_first=train_first, echo=typer.echo)


def _mount_stream_commands() -> None:
    # `fedtwin inject` and `fedtwin score` at the top level; the live plant as `fedtwin plant run`.
    for cmd in stream_app.registered_commands:
        name = cmd.name or (cmd.callback.__name__ if cmd.callback else "")
        if name == "plant" and cmd.callback is not None:
            plant_app.command("run", help=cmd.help)(cmd.callback)
        else:
            app.registered_commands.append(cmd)


def main() -> None:
    """Entry point: one clear line on known errors, never a bare traceback for them."""
    _mount_stream_commands()
    try:
        # Without standalone mode click returns (not raises) a command's exit code: pass it on.
        code = app(standalone_mode=False)
    except FedtwinError as exc:
        typer.echo(f"fedtwin: error: {exc}", err=True)
        sys.exit(1)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        typer.echo(f"fedtwin: error: setting {field}: {first['msg']} (set FEDTWIN_{field.upper()})", err=True)
        sys.exit(2)
    except ValueError as exc:
        typer.echo(f"fedtwin: error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        # Typer vendors its own click (typer._click), so match click's exceptions by what they offer.
        if type(exc).__name__ == "Abort":
            sys.exit(1)
        exit_code = getattr(exc, "exit_code", None)
        if isinstance(exit_code, int):
            show = getattr(exc, "show", None)
            if callable(show):  # usage errors: click's own one-line message and hint
                show()
            sys.exit(exit_code)
        raise
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
