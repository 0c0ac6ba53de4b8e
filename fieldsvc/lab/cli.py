"""``flask --app app lab import FILE``: the same import as the API, with a progress bar."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ..auth.principal import Actor
from ..auth.services import get_user_by_username
from ..errors import Problem
from ..extensions import db
from .importing import XlsxLimits


@click.group()
def lab() -> None:
    """Lab results."""


@lab.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--user", "username", default=None,
              help="Import as this lab or official account (the four-eyes rule then bars it from approving).")
@click.option("--lab", "lab_name", default=None, help="The lab's name (default: the user name, or 'cli').")
@click.option("--dry-run", is_flag=True, help="Check the file and print the report; write nothing.")
@with_appcontext
def import_file(path: Path, username: str | None, lab_name: str | None, dry_run: bool) -> None:
    """Import a lab CSV/XLSX: all or nothing, idempotent by SHA-256."""
    from . import services

    actor = Actor(user_id=0, username="cli", role="lab")
    if username:
        user = get_user_by_username(username)
        if user is None or user.role not in ("lab", "official"):
            raise click.ClickException(f"{username} is not a lab or official account")
        actor = Actor(user_id=user.id, username=user.username, role=user.role, county_code=user.county_code)
    data = path.read_bytes()
    limits = XlsxLimits.from_config(current_app.config)
    try:
        if dry_run:
            report = services.import_results(data, path.name, actor, lab=lab_name, dry_run=True,
                                             xlsx_limits=limits).report
            db.session.rollback()
            click.echo(services.dumps(report))
            return
        interactive = sys.stdout.isatty()
        with click.progressbar(length=1, label=f"importing {path.name}", show_pos=True) as bar:
            def advance(n: int, total: int) -> None:
                bar.length = total
                bar.update(n)
                if not interactive:  # not a terminal (cron, logs): one line per chunk instead of a bar
                    click.echo(f"{bar.pos}/{total} results written")

            outcome = services.import_results(data, path.name, actor, lab=lab_name, progress=advance,
                                              xlsx_limits=limits)
        db.session.commit()
    except Problem as problem:
        db.session.rollback()
        for row in problem.details.get("rows", [])[:50]:
            click.echo(f"line {row['line']}: " + "; ".join(f"{k}: {v}" for k, v in row["errors"].items()), err=True)
        raise click.ClickException(f"{problem.code}: {problem.message}") from None
    report = outcome.report
    verb = "imported" if outcome.created else "already imported (same SHA-256), nothing added:"
    click.echo(f"{verb} import {report['import_id']}: {report['rows']} rows, {report['accepted']} accepted, "
               f"{report['held']} held, {report['qc_held']} held by QC")
    for warning in report["warnings"]:
        click.echo(f"warning: {warning}")
