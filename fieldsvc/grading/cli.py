"""``flask --app app grade --county CODE`` and ``flask --app app rule-packs list|add|verify``."""

from __future__ import annotations

import os
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select

from ..auth.principal import SYSTEM, Actor
from ..errors import Problem
from ..extensions import db
from ..places.models import Parcel

DEFAULT_WORKERS = 2 if (os.cpu_count() or 1) > 1 else 0  # readers ahead of the one writing process


def _fail(problem: Problem) -> None:
    db.session.rollback()
    details = f" {problem.details}" if problem.details else ""
    raise click.ClickException(f"{problem.code}: {problem.message}{details}")


@click.command("grade")
@click.option("--county", required=True, help="County division code to grade (all its parcels).")
@click.option("--rule-pack", default=None, help="Rule pack code (default: the green-food soil pack).")
@click.option("--workers", type=click.IntRange(min=0), default=DEFAULT_WORKERS, show_default=True,
              help="Worker processes that read and evaluate ahead while this one writes (SQLite in WAL mode "
                   "only; 0: serial).")
@with_appcontext
def grade(county: str, rule_pack: str | None, workers: int) -> None:
    """Grade every parcel of a county and rebuild its village, farm-park and county roll-ups."""
    from . import runs

    actor = Actor(SYSTEM.user_id, "cli", "admin")
    try:
        total = db.session.scalar(select(func.count()).select_from(Parcel).where(Parcel.county_code == county))
        db.session.rollback()  # the run starts its own transaction (workers need one that begins with it)
        with click.progressbar(length=total or 0, label=f"grading county {county}") as bar:
            run = runs.run_grading("county", county, rule_pack, actor, progress=bar.update, workers=workers)
        body = runs.run_dict(run, include_changed=False)
        db.session.commit()
    except Problem as problem:
        _fail(problem)
    counts = " ".join(f"{k}={v}" for k, v in body["counts"].items())
    click.echo(f"run {body['id']}: {counts} in {body['duration_ms']} ms")
    if not body["rule_pack"]["verified"]:
        click.echo(f"note: {body['rule_pack']['note']}")


@click.group("rule-packs")
def rule_packs() -> None:
    """List rule packs, or mark one verified against the official text."""


@rule_packs.command("list")
@with_appcontext
def list_command() -> None:
    """Every pack version with its standard and verification."""
    from . import pack_admin

    for item in pack_admin.rule_pack_list():
        flag = f"verified by {item['verified_by']}" if item.get("verified_by") else (
            "verified" if item["verified"] else "NOT verified")
        default = " (default)" if item["default"] else ""
        click.echo(f"{item['code']} {item['version']}{default}: {item['standard']} [{item['kind']}] {flag}")


@rule_packs.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@with_appcontext
def add_command(file: Path) -> None:
    """Add a validated pack (a new code, or a new version of one); never replaces a stored version."""
    from flask import current_app

    from .rules import add_pack

    try:
        pack = add_pack(file, Path(current_app.instance_path) / "rule_packs")
    except Problem as problem:
        _fail(problem)
    click.echo(f"added {pack.code} {pack.version}: {pack.standard} [{pack.kind}]"
               + ("" if pack.verified else " (NOT verified)"))


@rule_packs.command("verify")
@click.argument("code")
@click.option("--by", "by", required=True, help="Username of the admin who checked the official text.")
@click.option("--version", default=None, help="Pack version (default: the newest).")
@click.option("--note", default=None, help="Which text was checked (edition, pages).")
@with_appcontext
def verify_command(code: str, by: str, version: str | None, note: str | None) -> None:
    """Mark a pack version verified: its values were checked against the official standard text."""
    from . import pack_admin

    try:
        row = pack_admin.verify_rule_pack(code, by, version, note, Actor(SYSTEM.user_id, f"cli:{by}", "admin"))
        db.session.commit()
    except Problem as problem:
        _fail(problem)
    click.echo(f"{row.rule_pack} {row.rule_pack_version} verified by {row.verified_by}")
