"""Thin Prefect tasks: each submits one batch of stage work to a process.

Retries only for transient I/O errors (exponential backoff with jitter);
bad input is quarantined inside the work and never retried. The expensive
tasks' results are persisted (small JSON-able dicts of object keys) and cached
on the input keys + code + configuration hash, so a retried or repeated flow
run comes back with them ``Cached`` and re-executes only what had not
finished; the cheap idempotent tasks persist nothing (see RETRY).
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta

from prefect import task
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE
from prefect.tasks import exponential_backoff

from tasks import work

#: errors worth retrying: the network, the object store, timeouts
TRANSIENT = (ConnectionError, TimeoutError, OSError)
_POOL: ProcessPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def transient_only(task, task_run, state) -> bool:
    """Retry condition: only transient I/O errors (not bad input)."""
    try:
        state.result()
    except FileNotFoundError:
        return False
    except TRANSIENT:
        return True
    except Exception:  # noqa: BLE001 - anything else is not transient
        return False
    return False


def process_pool() -> ProcessPoolExecutor:
    """One spawn-based pool per Python process (CSPICE: processes, never threads)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            workers = int(os.environ.get("IOVOLC_PROCESSES", "2"))
            _POOL = ProcessPoolExecutor(max_workers=max(1, workers),
                                        mp_context=multiprocessing.get_context("spawn"))
            atexit.register(_POOL.shutdown, wait=False, cancel_futures=True)
        return _POOL


def run_in_process(fn, *args, timeout_s: float = 3600.0, **kwargs):
    """Run ``fn`` in the process pool (in-process when IOVOLC_PROCESSES=0).

    A batch that takes longer than ``timeout_s`` raises TimeoutError (retried).
    """
    if os.environ.get("IOVOLC_PROCESSES") == "0":
        return fn(*args, **kwargs)
    return process_pool().submit(fn, *args, **kwargs).result(timeout=timeout_s)


def inject_fault(stage: str) -> None:
    """Test hook: ``IOVOLC_FAULTS=calibrate:2`` fails the first 2 calls of a stage
    with a transient error; ``extract:1:fatal`` with a non-transient one."""
    spec = os.environ.get("IOVOLC_FAULTS", "")
    for item in filter(None, spec.split(",")):
        name, _, rest = item.partition(":")
        count, _, kind = rest.partition(":")
        if name == stage:
            with _POOL_LOCK:
                counter = _FAULTS.get(stage, 0)
                fire = counter < int(count or 1)
                if fire:
                    _FAULTS[stage] = counter + 1
            if fire and kind == "fatal":
                raise RuntimeError(f"injected fatal fault in {stage} ({counter + 1})")
            if fire:
                raise ConnectionError(f"injected transient fault in {stage} ({counter + 1})")


def reset_faults() -> None:
    """Forget injected-fault counters (tests)."""
    _FAULTS.clear()


_FAULTS: dict[str, int] = {}

#: cached results are trusted (and their records kept) this long
RESULTS_EXPIRY = timedelta(days=30)

#: discover / ingest / land-index / reach / publish: cheap, idempotent on the store (their work
#: skips what exists), so their results are not persisted: a rerun or a UI Retry runs
#: them again and they write nothing. Nothing piles up in the result prefix.
RETRY = dict(
    retries=3,
    retry_delay_seconds=exponential_backoff(backoff_factor=1),
    retry_jitter_factor=0.5,
    retry_condition_fn=transient_only,
    persist_result=False,
    cache_policy=NO_CACHE,
)
#: calibrate / solve-pass / extract / finish-pass: pure functions of their input keys,
#: code and configuration hash. Their results are persisted under the store's
#: ``prefect-results/`` prefix with a key that does not depend on the run: a rerun or a
#: UI Retry finds them Cached and writes nothing; records expire after
#: RESULTS_EXPIRY (flows.common.prune_results deletes the expired ones).
CACHED_ACROSS_RUNS = {**RETRY, "persist_result": True, "cache_policy": INPUTS + TASK_SOURCE,
                      "cache_expiration": RESULTS_EXPIRY}


@task(name="discover-products", **RETRY)
def discover_products(settings, perijoves, force: bool, config_hash: str):
    inject_fault("discover")
    return work.discover(settings, perijoves=perijoves, force=force)


@task(name="ingest-batch", **RETRY)
def ingest_batch(settings, volume_url: str, volume_id: str, products: list, config_hash: str):
    inject_fault("ingest")
    return run_in_process(work.ingest_batch, settings, volume_url=volume_url,
                          volume_id=volume_id, products=products)


@task(name="land-index", **RETRY)
def land_index(settings, volume_url: str, volume_id: str, config_hash: str):
    return work.land_index(settings, volume_url=volume_url, volume_id=volume_id)


@task(name="reach-of-groups", **{**RETRY, "retries": 1})
def reach_of_groups(settings, perijove: int, groups: list, config_hash: str):
    # a batching hint: one retry, and no more than 10 min (the flow batches by frames
    # without it)
    inject_fault("reach")
    return run_in_process(work.reach_of_groups, settings, groups=groups, timeout_s=600.0)


@task(name="calibrate-groups", **CACHED_ACROSS_RUNS)
def calibrate_groups(settings, perijove: int, groups: list, config_hash: str, force: bool):
    inject_fault("calibrate")
    return run_in_process(work.calibrate_groups, settings, perijove=perijove, groups=groups,
                          config_hash=config_hash, force=force)


@task(name="solve-pass-pointing", **CACHED_ACROSS_RUNS)
def solve_pass(settings, perijove: int, frames_keys: list, config_hash: str):
    inject_fault("pointing")
    return work.solve_pass(settings, perijove=perijove, frames_keys=frames_keys)


@task(name="extract-groups", **CACHED_ACROSS_RUNS)
def extract_groups(settings, perijove: int, groups: list, pointing_key: str,
                   pointing_sha256: str, config: dict, config_hash: str, force: bool):
    inject_fault("extract")
    return run_in_process(work.extract_groups, settings, perijove=perijove, groups=groups,
                          pointing_key=pointing_key, pointing_sha256=pointing_sha256,
                          config=config, force=force)


@task(name="finish-pass", **CACHED_ACROSS_RUNS)
def finish_pass(settings, perijove: int, groups: list, config: dict, config_hash: str):
    inject_fault("finish")
    return run_in_process(work.finish_pass, settings, perijove=perijove, groups=groups,
                          config=config)


@task(name="publish-catalog", retries=3,
      retry_delay_seconds=exponential_backoff(backoff_factor=1), retry_jitter_factor=0.5,
      retry_condition_fn=transient_only)
def publish(settings, perijoves, config_hash: str = ""):
    inject_fault("publish")
    return run_in_process(work.publish, settings, perijoves=perijoves, config_hash=config_hash)
