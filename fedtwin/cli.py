"""The ``fedtwin`` command line: configuration, the embedded stack, training, the live loop and the demo."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fedtwin.errors import FedtwinError

if TYPE_CHECKING:
    from fedtwin.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False)
config_app = typer.Typer(no_args_is_help=True, help="Effective configuration.")
stack_app = typer.Typer(
    no_args_is_help=True, help="Embedded services: Kafka (Tansu), Redis, MLflow, Prefect."
)
plant_app = typer.Typer(no_args_is_help=True, help="The triplex pump plant model.")
app.add_typer(config_app, name="config")
app.add_typer(stack_app, name="stack")
app.add_typer(plant_app, name="plant")


def _settings() -> Settings:
    from fedtwin.settings import get_settings

    return get_settings()


def use_prefect_api(settings: Settings | None = None) -> None:
    """Make Prefect talk to the configured API (set before prefect is imported)."""
    settings = settings or _settings()
    # fedtwin's Settings are the one source of truth: an unrelated PREFECT_API_URL in the shell must not win.
    os.environ["PREFECT_API_URL"] = settings.prefect_api_url
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
    from fedtwin import stack

    services = tuple(only) if only else stack.SERVICES
    unknown = set(services) - set(stack.SERVICES)
    if unknown:
        raise FedtwinError(f"unknown service(s) {sorted(unknown)}; choose from {list(stack.SERVICES)}")
    stack.up(_settings(), services, echo=typer.echo)


@stack_app.command("status")
def stack_status() -> None:
    """Show each service, its address, and whether fedtwin started it."""
    from fedtwin import stack

    for s in stack.status(_settings()):
        owner = f"started by fedtwin (pid {s.pid})" if s.started_by_fedtwin else "external"
        state = "up" if s.reachable else "DOWN"
        typer.echo(f"{s.name:8s} {state:5s} {s.address:32s} {owner}")


@stack_app.command("down")
def stack_down() -> None:
    """Stop only the services that fedtwin started."""
    from fedtwin import stack

    stack.down(_settings(), echo=typer.echo)


@plant_app.command("plot")
def plant_plot(
    out: Annotated[Path, typer.Option(help="PNG to write")] = Path("out/plant_overview.png"),
) -> None:
    """Write a PNG of healthy vs each fault: pressure, flow, current, spectrum."""
    from plant_models import plot_overview

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
) -> None:
    """Run the training flow: simulate, validate, train per fault, federate, evaluate, register, promote."""
    use_prefect_api()
    from flows.training import training_flow

    result = training_flow(strategy=strategy, rounds=rounds)
    typer.echo(str(result))


@app.command("demo")
def demo(
    seconds: Annotated[float, typer.Option(help="Seconds of live data to stream")] = 24.0,
    fault_at: Annotated[float, typer.Option(help="Second at which a fault is injected")] = 10.0,
    train_first: Annotated[bool, typer.Option(help="Train before streaming")] = True,
) -> None:
    """Train, stream live data with a fault injected part-way, print the alerts and the UI addresses."""
    use_prefect_api()
    from flows.demo import run_demo

    run_demo(seconds=seconds, fault_at=fault_at, train_first=train_first, echo=typer.echo)


def _mount_optional() -> None:
    try:
        from fedtwin.cli_stream import app as stream_app
    except ImportError:
        return
    # `fedtwin inject` and `fedtwin score` at the top level; the live plant as `fedtwin plant run`.
    for cmd in stream_app.registered_commands:
        name = cmd.name or (cmd.callback.__name__ if cmd.callback else "")
        if name == "plant" and cmd.callback is not None:
            plant_app.command("run", help=cmd.help)(cmd.callback)
        else:
            app.registered_commands.append(cmd)


def main() -> None:
    """Entry point: one clear line on known errors, never a bare traceback for them."""
    from pydantic import ValidationError

    _mount_optional()
    try:
        app(standalone_mode=False)
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
        import click

        if isinstance(exc, click.exceptions.Exit):
            sys.exit(exc.exit_code)
        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            sys.exit(1)
        raise


if __name__ == "__main__":
    main()
