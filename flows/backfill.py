"""backfill: process a range of past perijoves with bounded concurrency.

Against a Prefect server (this flow running as a deployment, or mode=
"deployments"), it creates one ``process-perijove`` deployment run per
perijove with an idempotency key, so re-running a backfill never duplicates
runs; the deployment's concurrency limit throttles them. Locally it runs the
perijoves as subflows, at most ``max_concurrent`` at once. The perijoves do
not publish; the backfill publishes one catalog version after the last one
(a version per perijove would rebuild the growing catalog each time). A
progress artifact follows along.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact

from flows.artifacts import emit_alert_events, publish_artifacts
from flows.common import settings_for
from flows.params import BackfillParams, PerijoveParams
from flows.perijove import process_perijove
from flows.runners import uses_dask, with_runner
from flows.stages import publish_catalog


def _idempotency_key(params: BackfillParams, pj: int) -> str:
    payload = {"pj": pj, "sources": params.sources.model_dump(),
               "thresholds": params.thresholds.model_dump(), "force": params.force}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
    return f"backfill-pj{pj}-{digest}"


#: runs of a perijove tried when the Prefect API fails it, and the pause before each retry
API_ATTEMPTS = 3
API_RETRY_DELAY_S = 10.0


def api_error(exc: BaseException | None) -> bool:
    """The Prefect API's error, not the work's: an HTTP 5xx (a busy SQLite server answers
    503 once its client's own retries are spent) or 429, a lost connection, a timeout."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    if isinstance(exc, PrefectHTTPStatusError):
        code = exc.response.status_code
        return code >= 500 or code == 429
    return isinstance(exc, httpx.NetworkError | httpx.TimeoutException
                      | httpx.RemoteProtocolError)


def api_hiccup(state) -> bool:
    """A failed run whose error is the Prefect API's (:func:`api_error`)."""
    if not state.is_failed():
        return False
    try:
        exc = state.result(raise_on_failure=False)
    except Exception as err:  # noqa: BLE001 - whatever the state holds is the answer
        exc = err
    return api_error(exc)


def run_retrying_api_errors(run, *, what: str, log, attempts: int = API_ATTEMPTS,
                            delay_s: float = API_RETRY_DELAY_S):
    """``run()`` (a flow call returning its state) again, after a pause, while it fails on
    an API error, returned in a Failed state or raised by the engine (creating the run,
    proposing its states): a retry redoes little (finished tasks come back Cached,
    ingest and writes skip what exists). Any other failure is returned or raised as it
    is; after the last attempt, the API error too."""
    attempts = max(1, attempts)
    for attempt in range(1, attempts + 1):
        try:
            state = run()
        except Exception as exc:
            if attempt == attempts or not api_error(exc):
                raise
            why = f"{type(exc).__name__}: {exc}"
        else:
            if attempt == attempts or not api_hiccup(state):
                return state
            why = state.message
        log.warning("%s failed on a Prefect API error (attempt %d of %d): %s; running it "
                    "again in %.0f s", what, attempt, attempts, why, delay_s * attempt)
        time.sleep(delay_s * attempt)
    raise AssertionError("unreachable")  # the last attempt returns or raises


def perijove_params(params: BackfillParams, pj: int) -> PerijoveParams:
    """The run parameters of one of the backfill's perijoves (a subflow or a deployment
    run): no catalog version of its own, the backfill's batch size."""
    return PerijoveParams(perijoves=[pj], sources=params.sources, thresholds=params.thresholds,
                          force=params.force, publish=False,
                          stage_subflows=params.stage_subflows,
                          frames_per_task=params.frames_per_task)


def _use_deployments(params: BackfillParams) -> bool:
    if params.mode != "auto":
        return params.mode == "deployments"
    from prefect.runtime import deployment

    return deployment.id is not None


@flow(name="backfill", log_prints=True)
def backfill(params: BackfillParams = BackfillParams()) -> dict:
    """Re-process perijoves first..last (inclusive)."""
    log = get_run_logger()
    pjs = list(range(params.first_perijove, params.last_perijove + 1))
    settings = settings_for(params.sources)
    progress = create_progress_artifact(progress=0.0, key="backfill-progress",
                                        description=f"PJ{pjs[0]}-{pjs[-1]}")
    results: dict[int, str] = {}
    if _use_deployments(params):
        from prefect.deployments import run_deployment

        runs = {}
        for pj in pjs:
            p = perijove_params(params, pj)
            runs[pj] = run_deployment(params.deployment, parameters={"params": p.model_dump()},
                                      timeout=0, idempotency_key=_idempotency_key(params, pj),
                                      as_subflow=False, tags=["backfill"])
        from prefect import get_client

        pending = dict(runs)
        with get_client(sync_client=True) as client:
            while pending:
                for pj, run in list(pending.items()):
                    state = client.read_flow_run(run.id).state
                    if state is not None and state.is_final():
                        results[pj] = state.name
                        del pending[pj]
                update_progress_artifact(progress, 100.0 * len(results) / len(pjs))
                if pending:
                    time.sleep(2.0)
    else:
        per_pj = process_perijove
        if not params.stage_subflows and not uses_dask(settings):
            # the stages' tasks run in the perijove's run: on the runner the stage subflows
            # would have had (max_concurrency threads)
            per_pj = with_runner(process_perijove, settings)

        def one(pj: int) -> str:
            p = perijove_params(params, pj)
            return run_retrying_api_errors(lambda: per_pj(p, return_state=True),
                                           what=f"PJ{pj}", log=log).name

        # each perijove in a copy of this run's context, so that its run is a subflow of the
        # backfill (a bare thread starts with an empty context: a run of its own)
        contexts = [contextvars.copy_context() for _ in pjs]
        with ThreadPoolExecutor(max_workers=params.max_concurrent) as pool:
            runs = pool.map(lambda ctx, pj: ctx.run(one, pj), contexts, pjs)
            for pj, name in zip(pjs, runs, strict=True):
                results[pj] = name
                update_progress_artifact(progress, 100.0 * len(results) / len(pjs))
    # one catalog version for the whole backfill, after its last perijove
    pub = publish_catalog(PerijoveParams(perijoves=pjs, sources=params.sources,
                                         thresholds=params.thresholds), artifacts=False)
    publish_artifacts(settings, pub)
    emit_alert_events(pub)
    log.info("backfill results: %s", results)
    return {"results": results}
