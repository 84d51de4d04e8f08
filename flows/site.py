"""Site-round flow: one operation of the federated loop, run by a site's own worker on the site's own data.

Each site serves this flow as the deployment ``fedtwin-site-round/<site>`` on its own work pool
(``fedtwin site start --site <id>``); the training flow starts one run per site and operation
(:class:`fedtwin.training.site_executor.DeploymentExecutor`). Parameters and the returned value are JSON
text made by
:mod:`federated.codec`; the result is persisted with Prefect's JSON serializer in the result storage the
worker is configured with (Redis), where the coordinator reads it back without Prefect's deserializers.
"""

from __future__ import annotations

from prefect import flow

from fedtwin.settings import get_settings
from fedtwin.training.sites import SITE_FLOW, answer


@flow(
    name=SITE_FLOW,
    flow_run_name="{site}-{op}-r{server_round}",
    persist_result=True,
    result_serializer="json",
    retries=0,  # the round loop's quorum handles a failed site; a retry would only stretch the round
)
def site_round(site: str, op: str, server_round: int, payload: str) -> str:
    """Answer one site call from this site's data directory (``FEDTWIN_DATA_DIR`` of the site's worker)."""
    return answer(site, op, server_round, payload, get_settings().data_dir)
