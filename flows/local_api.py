"""Prefect's temporary local API, started ahead of the first flow run (``iovolc demo``).

Prefect's local mode starts a temporary API server (``SubprocessASGIServer``) at the
first flow run when no ``PREFECT_API_URL`` is set. :class:`TemporaryApiStart` starts that
same server in a thread, so the demo can simulate its downlink meanwhile (stop 41).
Prefect is imported inside the thread: the caller's thread pays none of its ~3 s of
imports. Why: docs/decisions.md, "The demo's first run ... (stop 41)".
"""

from __future__ import annotations

import threading
import time


class TemporaryApiStart(threading.Thread):
    """Start Prefect's temporary local API in a thread. Join it before the first flow
    run: Prefect marks the server running before it answers. ``seconds``: how long the
    start took (None when nothing was started); ``error``: why it did not start (the
    first flow run then starts the server itself, and says so if it cannot). Nothing is
    started when ``PREFECT_API_URL`` is set or the temporary server is turned off."""

    def __init__(self) -> None:
        super().__init__(name="prefect-start", daemon=True)
        self.seconds: float | None = None
        self.error: str | None = None

    def run(self) -> None:
        t0 = time.perf_counter()
        try:
            from prefect.server.api.server import SubprocessASGIServer
            from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

            if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
                return  # a server of the user's, or none wanted: nothing to start
            SubprocessASGIServer().start()
            self.seconds = time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001 -- reported; the flows start it again
            self.error = f"{type(exc).__name__}: {exc}"
            stop_temporary_api()


def stop_temporary_api() -> None:
    """Stop the temporary API a failed start left behind. Prefect's ``start`` gives up
    after its startup timeout without stopping the server process it launched, and keeps
    that port. The next start would then launch a second server on the same port, which
    cannot bind. Prefect only relaunches on exit code 3, so the flows would run against
    the orphan, and nothing would stop it at exit (review of stop 41). ``stop`` ends the
    process and forgets the instance, so the first flow run starts a new one."""
    try:
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer._instances.get(None)
        if server is not None:
            server.stop()
    except Exception:  # noqa: BLE001 -- nothing more to do: the error is already reported
        pass
