"""Serve every fedtwin deployment from one process, no work pool needed (``python -m deployments.serve``).

The scheduled training and drift monitor, and the retrain deployment run by drift events, as in prefect.yaml
(whose long-running ``scorer`` deployment is left out here: run ``fedtwin score`` as its own service).
"""

from __future__ import annotations

from typing import Any


def build_deployments(train_cron: str = "0 3 * * *", monitor_interval_s: int = 300) -> list[Any]:
    """The runner deployments, with the same schedules and trigger as prefect.yaml."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
    from prefect.schedules import Cron

    from flows.campaign import campaign_flow
    from flows.candidate import candidate_flow
    from flows.monitor import drift_monitor_flow
    from flows.retrain import retrain_flow
    from flows.training import training_flow
    from monitoring.events import DRIFT_EVENT, FLEET_RESOURCE_PATTERN

    trigger = DeploymentEventTrigger(
        expect={DRIFT_EVENT},
        match={"prefect.resource.id": FLEET_RESOURCE_PATTERN},
        parameters={"drift": "{{ event.payload }}"},
    )
    return [
        training_flow.to_deployment(
            name="train", schedule=Cron(train_cron, timezone="UTC"), parameters={"profile": "full"}
        ),
        retrain_flow.to_deployment(
            name="retrain",
            triggers=[trigger],
            parameters={"profile": "full"},
            concurrency_limit=ConcurrencyLimitConfig(
                limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
            ),
        ),
        drift_monitor_flow.to_deployment(name="drift-monitor", interval=monitor_interval_s),
        # Run on demand (`prefect deployment run fedtwin-candidate/candidate`): no schedule, one at a time.
        candidate_flow.to_deployment(
            name="candidate",
            parameters={"profile": "full"},
            concurrency_limit=ConcurrencyLimitConfig(
                limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
            ),
        ),
        campaign_flow.to_deployment(name="campaign"),
    ]


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted (SIGINT stops it); ``--only NAME`` serves a subset."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--only", action="append", choices=["train", "retrain", "drift-monitor", "candidate", "campaign"]
    )
    args = parser.parse_args(argv)
    from fedtwin.app.cli import use_prefect_api

    use_prefect_api()
    from prefect import serve

    deployments = [d for d in build_deployments() if not args.only or d.name in args.only]
    serve(*deployments)


if __name__ == "__main__":
    main()
