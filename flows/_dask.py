"""Dask pieces of :mod:`flows.runners`, imported only when a Dask runner is used.

(``distributed`` takes ~2 s to import: flow runs on the default runner never pay it.)
"""

from __future__ import annotations

import os
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin
from prefect_dask import DaskTaskRunner

#: name under which the worker plugin is registered on a cluster
PLUGIN_NAME = "iovolc-spice-safe"


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


class IovolcDaskTaskRunner(DaskTaskRunner):
    """``DaskTaskRunner`` that registers :class:`SpiceSafeWorker` on the cluster on first use."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plugin_registered = False

    @property
    def client(self):  # the parent's lazily created client, plus the plugin
        client = DaskTaskRunner.client.fget(self)
        if not self._plugin_registered:
            client.register_plugin(SpiceSafeWorker(), name=PLUGIN_NAME)
            self._plugin_registered = True
        return client
