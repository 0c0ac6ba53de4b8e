"""After ``flask --app app demo`` every console queue has something in it (issue 16): the README
promises something on every screen, and an empty queue teaches nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from fieldsvc.extensions import db
from tests.api.test_console_pages import Console, text_of


def test_every_console_queue_is_non_empty_after_the_demo(app):
    from fieldsvc.auth.principal import Actor
    from fieldsvc.auth.services import get_user_by_username
    from fieldsvc.certificates.models import Certificate
    from fieldsvc.console import queries
    from fieldsvc.dbtypes import utcnow

    result = app.test_cli_runner().invoke(args=["demo", "--parcels", "400", "--seed", "5"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        user = get_user_by_username("official")
        counts = queries.queue_counts(Actor(user.id, user.username, user.role, user.county_code))
        soon = db.session.scalars(select(Certificate).where(
            Certificate.status == "valid", Certificate.valid_until <= utcnow() + timedelta(days=30))).all()
    assert all(counts.values()), counts  # conflicts, held samples and results, pending, QC holds, flagged
    assert soon, ("no certificate expiring within 30 days", result.output)
    console = Console(app)
    assert console.login("official", "demo-password").status_code == 303
    page = text_of(console.get("/console/queues?lang=en"))
    for name in counts:
        assert f'id="{name}"' in page
    assert "(0)" not in page
    assert "flagged-" in page  # a flagged sample row with its review form
