"""``audit.services.insert_rows``: the bulk writer of audit events, grade rows, roll-up members and
samples. On PostgreSQL rows that cannot clash go in by ``COPY``; on both engines they must be stored
as a Core insert stores them, and a clash must surface as SQLAlchemy's ``IntegrityError``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from fieldsvc.audit.models import AuditEvent, EntityVersion
from fieldsvc.audit.services import insert_rows
from fieldsvc.extensions import db

WHEN = datetime(2026, 12, 6, 1, 30, 15, 250000, tzinfo=UTC)
DETAILS = {"source": "测试", "n": 3, "ratio": 0.125, "flags": ["a", "b"], "nested": {"ok": True, "none": None}}


def _row(key: str, details):
    return ("create", "sample", key, None, "f" * 64, details)


def test_bulk_rows_read_back_as_a_core_insert_stores_them(app):
    with app.app_context():
        columns = ("action", "entity_type", "entity_key", "before_digest", "after_digest", "details")
        count = insert_rows(AuditEvent.__table__, ("at", "actor", "request_id"), (WHEN, "tester", None), columns,
                            [_row("bulk-1", DETAILS), _row("bulk-2", None), _row("bulk-3", DETAILS)],
                            memo=("details",))
        db.session.execute(insert(AuditEvent), [{"at": WHEN, "actor": "tester", "action": "create",
                                                 "entity_type": "sample", "entity_key": "core-1",
                                                 "after_digest": "f" * 64, "details": DETAILS}])
        db.session.commit()
        assert count == 3
        got = {e.entity_key: e for e in db.session.scalars(select(AuditEvent).where(AuditEvent.actor == "tester"))}
        core = got.pop("core-1")
        assert sorted(got) == ["bulk-1", "bulk-2", "bulk-3"]
        for key, event in got.items():
            assert (event.at, event.action, event.after_digest, event.request_id) == (
                core.at, core.action, core.after_digest, None)
            assert event.details == (None if key == "bulk-2" else core.details)
        assert core.at == WHEN and core.details == DETAILS


def test_a_clash_is_sqlalchemys_integrity_error_and_the_transaction_goes_on(app):
    with app.app_context():
        columns = ("entity_type", "entity_key", "version", "deleted", "data_json")
        fixed = (("actor", "created_at"), ("tester", WHEN))
        insert_rows(EntityVersion.__table__, *fixed, columns, [("sample", "s-1", 1, False, '{"a":1}')])
        db.session.commit()
        with pytest.raises(IntegrityError):
            with db.session.begin_nested():
                insert_rows(EntityVersion.__table__, *fixed, columns,
                            [("sample", "s-1", 2, False, '{"a":2}'), ("sample", "s-1", 1, False, '{"a":3}')])
        insert_rows(EntityVersion.__table__, *fixed, columns, [("sample", "s-1", 2, False, '{"a":2}')])
        db.session.commit()
        kept = db.session.execute(select(EntityVersion.version, EntityVersion.data_json)
                                  .where(EntityVersion.entity_key == "s-1").order_by(EntityVersion.version)).all()
        assert [tuple(r) for r in kept] == [(1, '{"a":1}'), (2, '{"a":2}')]  # nothing of the failed batch
