"""``fieldsvc.events``: subscribers run at once, in the listed order, depth first; no chain is an error."""

from __future__ import annotations

import dataclasses

import pytest
from flask import Flask

from fieldsvc import events
from fieldsvc.events import MediaCompleted, ParcelsChanged, SamplesChanged


def app_with(chain) -> Flask:
    app = Flask(__name__)
    events.install(app, chain)
    return app


def test_subscribers_run_in_the_listed_order_and_nested_publishes_run_depth_first():
    seen = []

    def complete(e: MediaCompleted) -> None:
        seen.append(("complete", e.sha256s))
        events.publish(SamplesChanged(("s1",)))
        seen.append(("complete done", e.sha256s))

    app = app_with([
        (MediaCompleted, complete),
        (SamplesChanged, lambda e: seen.append(("regrade", e.ids))),
        (MediaCompleted, lambda e: seen.append(("second", e.sha256s))),
    ])
    with app.app_context():
        events.publish(MediaCompleted(("a",)))
    assert seen == [("complete", ("a",)), ("regrade", ("s1",)), ("complete done", ("a",)), ("second", ("a",))]


def test_an_event_nobody_listens_to_is_a_no_op_but_an_app_without_a_chain_refuses():
    with app_with([]).app_context():
        events.publish(ParcelsChanged(("p",)))
    with Flask(__name__).app_context(), pytest.raises(RuntimeError, match="create_app"):
        events.publish(ParcelsChanged(("p",)))


def test_a_subscriber_error_propagates_to_the_publisher():
    def boom(_e):
        raise ValueError("no")

    with app_with([(ParcelsChanged, boom)]).app_context(), pytest.raises(ValueError):
        events.publish(ParcelsChanged(("p",)))


def test_install_replaces_the_chain_and_refuses_what_is_not_an_event():
    seen = []
    app = app_with([(ParcelsChanged, lambda e: seen.append(1))])
    events.install(app, [(ParcelsChanged, lambda e: seen.append(2))])
    with app.app_context():
        events.publish(ParcelsChanged(("p",)))
    assert seen == [2]
    with pytest.raises(TypeError):
        events.install(app, [(dict, print)])


def test_events_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        ParcelsChanged(("p",)).codes = ("q",)


def test_create_app_installs_the_whole_chain_of_handlers(app):
    from fieldsvc import handlers

    table = app.extensions[events.EXTENSION]
    assert [(kind, sub) for kind, subs in table.items() for sub in subs] == sorted(
        handlers.CHAIN, key=lambda pair: [k for k, _ in handlers.CHAIN].index(pair[0]))
    assert set(table) | set(handlers.UNHANDLED) == {c for c in vars(events).values() if isinstance(c, type)
                                                     and issubclass(c, events.Event) and c is not events.Event}
