"""deployments/automations.yaml against Prefect's own models, and the alert events.

The YAML is validated with ``AutomationCore`` (what ``prefect automation create
--from-file`` uses); the server's trigger model checks that the events the
publish stage emits (``alert_events``) are exactly the ones the automation reacts
to; the notification body is rendered with Prefect's own template engine.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from prefect.events import Event
from prefect.events.actions import SendNotification
from prefect.events.schemas.automations import AutomationCore, EventTrigger
from prefect.server.events.schemas.automations import EventTrigger as ServerEventTrigger
from prefect.server.events.schemas.events import ReceivedEvent
from prefect.server.utilities.user_templates import render_user_template, validate_user_template

from iovolc.publish.alerts import alert_events, alerts_for
from iovolc.publish.synthetic import synthetic_catalog

AUTOMATIONS = Path(__file__).resolve().parents[1] / "deployments" / "automations.yaml"
BLOCK_ID = uuid.UUID("6f1c0a52-3d1e-4c8e-9a51-7a0e3f2b9c11")


@pytest.fixture(scope="module")
def automation() -> AutomationCore:
    text = AUTOMATIONS.read_text().replace("IOVOLC_ALERTS_BLOCK_ID", str(BLOCK_ID))
    docs = yaml.safe_load(text)["automations"]
    assert len(docs) == 1
    return AutomationCore.model_validate(docs[0])


@pytest.fixture(scope="module")
def events():
    old = synthetic_catalog(perijoves=(57, 58)).catalog
    new = synthetic_catalog(perijoves=(57, 58, 59), outburst=(59, 3000.0)).catalog
    alerts = alerts_for(old, new)
    # and a brightening of Pele at PJ59
    m = (new["hotspot_id"] == "IVC-Pele") & (new["perijove"] == 59)
    bright = new.copy()
    bright.loc[m, ["power_gw", "power_gw_lo", "power_gw_hi"]] = [3000.0, 2400.0, 3750.0]
    alerts += [a for a in alerts_for(old, bright) if a["kind"] == "brightening"]
    assert {a["kind"] for a in alerts} == {"new-hotspot", "brightening"}
    return alert_events(alerts, catalog_version="v0002")


def _received(event: str, resource: dict, payload: dict) -> ReceivedEvent:
    return ReceivedEvent(occurred=datetime.now(UTC), event=event, resource=resource,
                         payload=payload, id=uuid.uuid4())


def test_yaml_is_a_valid_prefect_automation(automation):
    assert automation.name == "iovolc-hotspot-alerts" and automation.enabled
    trigger = automation.trigger
    assert isinstance(trigger, EventTrigger)
    assert trigger.expect == {"iovolc.alert.*"}
    assert trigger.match.root == {"prefect.resource.id": "iovolc.hotspot.*"}
    assert trigger.posture == "Reactive" and trigger.threshold == 1
    [action] = automation.actions
    assert isinstance(action, SendNotification)
    assert action.block_document_id == BLOCK_ID
    validate_user_template(action.subject)
    validate_user_template(action.body)
    assert "iovolc-alerts" in AUTOMATIONS.read_text()  # the block it must be filled from


def test_the_placeholder_must_be_filled():
    docs = yaml.safe_load(AUTOMATIONS.read_text())["automations"]
    with pytest.raises(ValueError, match="block_document_id"):
        AutomationCore.model_validate(docs[0])


def test_alert_events_are_valid_prefect_events(events):
    for name, resource, payload in events:
        ev = Event(event=name, resource=resource, payload=payload)
        assert ev.resource.id.startswith("iovolc.hotspot.")
        assert ev.event in ("iovolc.alert.new-hotspot", "iovolc.alert.brightening")


def test_trigger_covers_exactly_the_alert_events(automation, events):
    server_trigger = ServerEventTrigger.model_validate(automation.trigger.model_dump())
    for name, resource, payload in events:
        assert server_trigger.covers(_received(name, resource, payload)), name
    other = _received("prefect.flow-run.Completed",
                      {"prefect.resource.id": "prefect.flow-run.123"}, {})
    assert not server_trigger.covers(other)
    not_a_hotspot = _received("iovolc.alert.new-hotspot",
                              {"prefect.resource.id": "iovolc.catalog.v0002"}, {})
    assert not server_trigger.covers(not_a_hotspot)


def test_notification_body_renders(automation, events):
    [action] = automation.actions
    name, resource, payload = events[0]
    ev = _received(name, resource, payload)
    body = asyncio.run(render_user_template(action.body, {"event": ev}))
    subject = asyncio.run(render_user_template(action.subject, {"event": ev}))
    assert "iovolc.hotspot.IVC-NEW-0002" in subject and "new-hotspot" in subject
    assert "perijove 59" in body and "3000.0 GW" in body and "v0002" in body
    assert "no Davies" in body
