"""Dask pieces of :mod:`flows.runners`, imported only when a Dask runner is used.

(``distributed`` takes ~2 s to import: flow runs on the default runner never pay it.)
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from typing import Any

from distributed import LocalCluster
from distributed.diagnostics.plugin import WorkerPlugin
from prefect_dask import DaskTaskRunner

#: name under which the worker plugin is registered on a cluster
PLUGIN_NAME = "iovolc-spice-safe"

_CLUSTERS: dict[int, LocalCluster] = {}
_LOCK = threading.Lock()


class SpiceSafeWorker(WorkerPlugin):
    """Dask worker plugin: stage work runs in the worker process, one thread per process.

    Sets ``IOVOLC_PROCESSES=0`` on the worker, so ``tasks.stages.run_in_process``
    calls the stage work directly instead of starting a process pool (a Dask
    worker process is a process of its own, and a daemonic one: it could not
    start a pool). Refuses a worker with more than one thread: two CSPICE calls
    would then share one process at once (CSPICE is process-global and not
    thread-safe).
    """

    idempotent = False

    def setup(self, worker: Any) -> None:
        nthreads = worker.state.nthreads
        if nthreads != 1:
            raise RuntimeError(
                f"Dask worker {worker.address} has {nthreads} threads; iovolc's SPICE work "
                "needs one thread per worker process (CSPICE is process-global and not "
                "thread-safe): start workers with `dask worker --nthreads 1 --nworkers N`")
        os.environ["IOVOLC_PROCESSES"] = "0"


def local_cluster_kwargs(n_workers: int) -> dict[str, Any]:
    """``LocalCluster`` arguments for ``local:N``: N processes of one thread each."""
    return {"n_workers": n_workers, "threads_per_worker": 1, "processes": True,
            "dashboard_address": ":0"}


def shared_local_cluster(n_workers: int) -> LocalCluster:
    """This process's ``LocalCluster`` of ``n_workers`` workers, started on first use.

    Shared by every flow run of the process (calibrate and extract of one
    perijove run, the perijoves of a local backfill) so worker start-up and
    warm-up are paid once; closed when the process exits.
    """
    with _LOCK:
        cluster = _CLUSTERS.get(n_workers)
        if cluster is not None and cluster.status.name not in ("running", "created"):
            cluster = None
        if cluster is None:
            cluster = LocalCluster(**local_cluster_kwargs(n_workers))
            _CLUSTERS[n_workers] = cluster
        return cluster


def close_local_clusters() -> None:
    """Close the clusters started by :func:`shared_local_cluster` (also run at exit).

    Dask's INFO messages while closing are silenced: at interpreter exit the
    log handlers' streams may already be closed.
    """
    with _LOCK:
        clusters = list(_CLUSTERS.values())
        _CLUSTERS.clear()
    if not clusters:
        return
    log = logging.getLogger("distributed")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        for cluster in clusters:
            try:
                cluster.close()
            except Exception:  # noqa: BLE001 - at exit, best effort
                pass
    finally:
        log.setLevel(level)


atexit.register(close_local_clusters)


class IovolcDaskTaskRunner(DaskTaskRunner):
    """``DaskTaskRunner`` for the stage flows.

    ``local_workers=N`` connects to :func:`shared_local_cluster` (started on
    first use); otherwise it is a ``DaskTaskRunner`` as given (``address=``).
    Registers :class:`SpiceSafeWorker` on the cluster the first time it connects.
    """

    def __init__(self, *args: Any, local_workers: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.local_workers = local_workers
        self._plugin_registered = False

    def __eq__(self, other: object) -> bool:
        return (super().__eq__(other)
                and getattr(other, "local_workers", None) == self.local_workers)

    def duplicate(self) -> IovolcDaskTaskRunner:
        new = super().duplicate()
        new.local_workers = self.local_workers
        return new

    @property
    def client(self):  # the parent's lazily created client, plus the plugin
        if self.local_workers and not self.address and self._client is None:
            self.address = shared_local_cluster(self.local_workers).scheduler_address
        client = DaskTaskRunner.client.fget(self)
        if not self._plugin_registered:
            client.register_plugin(SpiceSafeWorker(), name=PLUGIN_NAME)
            self._plugin_registered = True
        return client
