"""The backfill runs a perijove again when the Prefect API, not the work, failed it.

A busy SQLite Prefect server answers HTTP 503 once the client's own retries
are spent (seen in a mission backfill with 4 perijoves at once: one perijove
lost, its stages' finished tasks cached). Only API errors are retried; a run
that failed on its work is returned as it is.
"""

from __future__ import annotations

import httpx
import pytest
from prefect.exceptions import PrefectHTTPStatusError
from prefect.states import Completed, Failed

from flows.backfill import api_hiccup, run_retrying_api_errors


class _Log:
    def __init__(self):
        self.lines = []

    def warning(self, msg, *args):
        self.lines.append(msg % args)


def _http(code: int) -> PrefectHTTPStatusError:
    req = httpx.Request("POST", "http://127.0.0.1:1/api/task_runs/")
    return PrefectHTTPStatusError(f"{code}", request=req, response=httpx.Response(code,
                                                                                   request=req))


@pytest.mark.parametrize(("state", "want"), [
    (Failed(data=_http(503)), True),
    (Failed(data=_http(500)), True),
    (Failed(data=_http(404)), False),
    (Failed(data=_http(429)), True),
    (Failed(data=httpx.ConnectError("refused")), True),
    (Failed(data=httpx.UnsupportedProtocol("ftp://")), False),
    (Failed(data=ValueError("PJ 99: no volume")), False),
    (Completed(), False),
])
def test_only_api_errors_count(state, want):
    assert api_hiccup(state) is want


def test_an_api_error_is_retried_then_the_run_completes():
    states = iter([Failed(data=_http(503), message="503"), Completed()])
    calls, log = [], _Log()
    out = run_retrying_api_errors(lambda: calls.append(1) or next(states), what="PJ15",
                                  log=log, delay_s=0.0)
    assert out.is_completed() and len(calls) == 2
    assert len(log.lines) == 1 and "PJ15" in log.lines[0] and "attempt 1 of 3" in log.lines[0]


def test_a_work_failure_is_not_retried_and_api_errors_stop_after_the_attempts():
    log = _Log()
    calls = []
    work = Failed(data=ValueError("bad"), message="bad")
    assert run_retrying_api_errors(lambda: calls.append(1) or work, what="PJ1", log=log,
                                   delay_s=0.0) is work
    assert len(calls) == 1 and not log.lines
    calls.clear()
    out = run_retrying_api_errors(lambda: calls.append(1) or Failed(data=_http(503)),
                                  what="PJ2", log=log, delay_s=0.0, attempts=3)
    assert out.is_failed() and len(calls) == 3 and len(log.lines) == 2


def test_an_api_error_raised_by_the_engine_is_retried_other_errors_are_not():
    """The engine raises (not returns) errors of the run itself: creating it, proposing
    its states."""
    log = _Log()
    outcomes = iter([_http(503), httpx.ReadTimeout("slow"), Completed()])

    def run():
        out = next(outcomes)
        if isinstance(out, Exception):
            raise out
        return out

    assert run_retrying_api_errors(run, what="PJ7", log=log, delay_s=0.0).is_completed()
    assert len(log.lines) == 2
    with pytest.raises(KeyError):
        run_retrying_api_errors(lambda: {}["x"], what="PJ8", log=log, delay_s=0.0)
    calls = []

    def always_503():
        calls.append(1)
        raise _http(503)

    with pytest.raises(PrefectHTTPStatusError):
        run_retrying_api_errors(always_503, what="PJ9", log=log, delay_s=0.0, attempts=2)
    assert len(calls) == 2


def test_each_perijove_run_takes_the_backfills_batch_size():
    """A backfill's perijoves batch coarser than a lone perijove run: the perijoves run at
    once keep the workers busy, and each task run costs CPU on the server and the flow."""
    from flows.backfill import perijove_params
    from flows.params import BACKFILL_FRAMES_PER_TASK, BackfillParams, PerijoveParams
    from iovolc.batches import pack

    params = BackfillParams(first_perijove=20, last_perijove=33, force=True)
    p = perijove_params(params, 21)
    assert p.perijoves == [21] and p.publish is False and p.force is True
    assert p.frames_per_task == BACKFILL_FRAMES_PER_TASK
    assert perijove_params(BackfillParams(frames_per_task=7), 21).frames_per_task == 7
    # a distant pass of the simulated mission (~290 frames in sequences of 10): one task
    # per stage in a backfill, several in a lone run
    groups = [[{"product_id": f"P{i}_{j}"} for j in range(10)] for i in range(29)]
    assert len(pack(groups, max_frames=p.frames_per_task)) == 1
    assert len(pack(groups, max_frames=PerijoveParams().frames_per_task)) >= 6
