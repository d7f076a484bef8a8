"""index_serving_refresh: when a recall model's release changes, load its champion index as serving does.

Scheduled on the release assets of ``nightly_retrain`` (``x-recpipe://release/<model>``, any of the three
recall models), which ``promote_<model>`` emits only when it promoted a release. Each ``refresh_<model>`` task
runs when its model's release is among the run's triggering events (every one of them in a manual run), and
is skipped otherwise. It loads the champion release's FAISS index with
``indexing.build.load_registered_index``, which refuses an index built from another tower than the serving
one, and writes a record to ``reports/serving_refresh/ds=<the release's day>/<model>.json`` in the lake.
"""

from __future__ import annotations

from airflow.sdk import Asset, AssetAny, dag, task
from airflow.sdk.exceptions import AirflowSkipException

from orchestration import deploy
from orchestration.tasks import INDEXED_MODELS, release_asset_uri

RELEASES = {model: Asset(release_asset_uri(model)) for model in INDEXED_MODELS}


@dag(
    dag_id="index_serving_refresh",
    schedule=AssetAny(*RELEASES.values()),
    tags=["recpipe", "serving", "index"],
    **deploy.DAG_DEFAULTS,
    doc_md=__doc__,
)
def index_serving_refresh():
    @task
    def refresh(model: str, run_id: str | None = None, triggering_asset_events=None) -> dict:
        from orchestration.tasks import refresh_serving_index

        events = list(triggering_asset_events.get(RELEASES[model], [])) if triggering_asset_events else []
        if triggering_asset_events and not events:
            raise AirflowSkipException(f"the release of {model} did not change in this run's triggering events")
        return refresh_serving_index(model, run_id, [event.extra for event in events])

    for model in INDEXED_MODELS:
        refresh.override(task_id=f"refresh_{model}")(model)


index_serving_refresh()
