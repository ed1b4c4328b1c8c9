"""Bad requests fail at once with one line, before any work, and are never retried."""

from __future__ import annotations

import pytest

from flows.params import PerijoveParams
from flows.perijove import process_perijove

pytestmark = pytest.mark.usefixtures("harness")


def _task_runs(flow_run_id):
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId

    with get_client(sync_client=True) as client:
        ids = [flow_run_id]
        subs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id])))
        ids += [s.id for s in subs]
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id={"any_": ids}))


def _message(state) -> str:
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - the run's own error
        return f"{type(exc).__name__}: {exc}"
    raise AssertionError(f"the run did not fail: {state}")


def test_perijove_without_data_fails_saying_what_the_archive_holds(sources):
    state = process_perijove(PerijoveParams(perijoves=[999], sources=sources), return_state=True)
    assert state.is_failed(), state
    msg = _message(state)
    assert "\n" not in msg and "no volume for PJ 999" in msg and "orbits 56-58" in msg, msg
    runs = _task_runs(state.state_details.flow_run_id)
    # only the ingest subflow and its discover task ran
    assert {r.name.rsplit("-", 1)[0] for r in runs} == {"ingest-downlink", "discover-products"}
    (discover,) = [r for r in runs if r.name.startswith("discover-products")]
    assert discover.run_count == 1  # not retried: it is not transient


@pytest.mark.parametrize("store_url", ["s3://bucket/a/../b", "gopher://host/x"])
def test_invalid_url_refused_before_any_task_and_not_retried(sources, store_url):
    src = sources.model_copy(update={"store_url": store_url})
    state = process_perijove(PerijoveParams(perijoves=[57], sources=src), return_state=True)
    assert state.is_failed(), state
    msg = _message(state)
    assert store_url in msg and "\n" not in msg, msg
    assert _task_runs(state.state_details.flow_run_id) == []


def test_invalid_archive_url_refused(sources):
    src = sources.model_copy(update={"archive_url": "file:///data/../etc"})
    state = process_perijove(PerijoveParams(perijoves=[57], sources=src), return_state=True)
    assert state.is_failed() and "'..'" in _message(state)
    assert _task_runs(state.state_details.flow_run_id) == []
