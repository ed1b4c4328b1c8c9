"""Task runners for the stage flows: Prefect's thread pool or a Dask cluster.

The runner is chosen from ``Settings.dask_address`` (``IOVOLC_DASK_ADDRESS``,
or ``dask_address`` in ``iovolc.toml``):

* unset or ``""``: Prefect's ``ThreadPoolTaskRunner`` with ``max_concurrency``
  threads; each task sends its SPICE work to the per-process spawn pool of
  ``tasks/stages.py`` (``IOVOLC_PROCESSES`` processes, default 2).
* ``local`` or ``local:N``: a temporary ``distributed.LocalCluster`` of N
  worker processes (default ``max_concurrency``), one thread each, dashboard
  on a free port. It is started on first use and shared by every flow run of
  the Python process (one deployment flow run = one process: its calibrate
  and extract subflows share it), and closed when the process exits: worker
  start-up and warm-up (~20 s here) are paid once, not per subflow.
* anything else (``tcp://scheduler:8786``): an existing Dask scheduler whose
  workers run ``dask worker --nthreads 1`` with this project installed (the
  compose ``dask-*`` services, or a Kubernetes Dask cluster).

On a Dask worker the stage work runs in the worker process itself
(``IOVOLC_PROCESSES=0``, set by the ``SpiceSafeWorker`` plugin that the runner
registers on the cluster); workers with more than one thread are refused.
Why: docs/decisions.md, "Scale-out".

Use from a parent flow::

    cal = with_runner(calibrate, settings)(params)

Dask itself is imported only when a Dask runner is asked for (``flows._dask``).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from prefect import Flow
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from iovolc.settings import Settings

_LOCAL = re.compile(r"^local(?::(\d+))?$")
RunnerKind = Literal["default", "local", "address"]


def parse_address(address: str | None, *, default_workers: int = 2
                  ) -> tuple[RunnerKind, Any]:
    """``("default", None)``, ``("local", n_workers)`` or ``("address", address)``."""
    if address is None or not address.strip():
        return "default", None
    address = address.strip()
    m = _LOCAL.match(address)
    if m:
        n = int(m.group(1)) if m.group(1) else default_workers
        if n < 1:
            raise ValueError(f"dask_address {address!r}: need at least one worker")
        return "local", n
    if address.startswith("local"):
        raise ValueError(f"dask_address {address!r}: expected 'local' or 'local:N'")
    return "address", address


def task_runner_for(settings_or_address: Settings | str | None) -> TaskRunner:
    """The task runner for ``settings.dask_address`` (or for an address given directly).

    No address: ``ThreadPoolTaskRunner`` (``max_concurrency`` threads when
    settings are given, else Prefect's default size); ``"local"``/``"local:N"``:
    the process's shared ``LocalCluster``; anything else: the Dask scheduler at that
    address. A Dask runner is a ``prefect_dask.DaskTaskRunner``.
    """
    if isinstance(settings_or_address, Settings):
        address = settings_or_address.dask_address
        workers: int | None = settings_or_address.max_concurrency
    else:
        address = settings_or_address
        workers = None
    kind, value = parse_address(address, default_workers=workers or 2)
    if kind == "default":
        return ThreadPoolTaskRunner(max_workers=workers)
    from flows._dask import IovolcDaskTaskRunner

    if kind == "local":
        return IovolcDaskTaskRunner(local_workers=value)
    return IovolcDaskTaskRunner(address=value)


def uses_dask(settings: Settings) -> bool:
    """Whether ``settings.dask_address`` asks for a Dask task runner."""
    return parse_address(settings.dask_address)[0] != "default"


def with_runner(flow: Flow, settings: Settings | str | None) -> Flow:
    """A copy of ``flow`` with the task runner of :func:`task_runner_for`."""
    return flow.with_options(task_runner=task_runner_for(settings))
