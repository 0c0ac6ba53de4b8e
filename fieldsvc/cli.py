"""``flask --app app ...`` commands: users, demo, backup, restore."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy.engine import make_url

from .auth.models import ROLES
from .certificates import cli as certificates_cli
from .errors import Problem
from .exports.cli import exports as exports_cli
from .extensions import db
from .grading import cli as grading_cli
from .lab.cli import lab as lab_cli


def register_cli(app: Flask) -> None:
    app.cli.add_command(users)
    app.cli.add_command(demo)
    app.cli.add_command(backup)
    app.cli.add_command(restore)
    app.cli.add_command(housekeeping)
    app.cli.add_command(lab_cli)
    app.cli.add_command(exports_cli)
    app.cli.add_command(certificates_cli.keys)
    app.cli.add_command(certificates_cli.certificates)
    app.cli.add_command(certificates_cli.issuer)
    app.cli.add_command(grading_cli.grade)
    app.cli.add_command(grading_cli.rule_packs)


def _fail(problem: Problem) -> None:
    details = f" {problem.details}" if problem.details else ""
    raise click.ClickException(f"{problem.code}: {problem.message}{details}")


@click.group()
def users() -> None:
    """Manage accounts."""


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option("--county", default=None, help="Scope the account to one county (division code).")
@with_appcontext
def create_user(username: str, role: str, password: str, county: str | None) -> None:
    """Create an account (the password is hashed with Argon2id)."""
    from .auth.services import create_user as create

    try:
        create(username, password, role, county_code=county, config=current_app.config, actor="cli")
        db.session.commit()
    except Problem as problem:
        db.session.rollback()
        _fail(problem)
    click.echo(f"created {role} {username}" + (f" scoped to county {county}" if county else ""))


@click.command()
@click.option("--parcels", default=20_000, show_default=True, help="How many parcels to generate.")
@click.option("--seed", default=391, show_default=True)
@click.option("--if-empty", is_flag=True, help="Do nothing when a county is already loaded.")
@with_appcontext
def demo(parcels: int, seed: int, if_empty: bool) -> None:
    """Load the demo county (townships, villages, farm parks, parcels, accounts, a device)."""
    from .demo import load_demo

    summary = load_demo(parcels=parcels, seed=seed, if_empty=if_empty, echo=click.echo,
                        secret_key=current_app.config["SECRET_KEY"])
    click.echo(summary)


@click.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def backup(path: Path) -> None:
    """Back up the database to PATH (SQLite online backup; pg_dump for PostgreSQL)."""
    url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])
    _private_file(path)
    if url.get_backend_name() == "sqlite":
        with sqlite3.connect(url.database) as source, sqlite3.connect(path) as target:
            source.backup(target)
        click.echo(f"backed up {url.database} to {path}")
        return
    if shutil.which("pg_dump") is None:
        raise click.ClickException("pg_dump is not installed; install postgresql-client")
    pg_url = url.set(drivername="postgresql").render_as_string(hide_password=False)
    subprocess.run(["pg_dump", "--format=custom", "--no-owner", f"--file={path}", pg_url], check=True)
    click.echo(f"backed up PostgreSQL database {url.database} to {path} (restore with pg_restore)")


def _private_file(path: Path) -> None:
    """Make (or empty) ``path`` as mode 0600 before anything is written into it: a backup holds
    the password hashes and tokens' digests, so no other local account may read it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    finally:
        os.close(fd)


@click.command()
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def restore(path: Path, yes: bool) -> None:
    """Restore a SQLite backup made by ``backup`` over the current database (stop the app first)."""
    url = make_url(current_app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() != "sqlite":
        raise click.ClickException("for PostgreSQL use: pg_restore --clean --if-exists -d DBNAME PATH")
    with sqlite3.connect(path) as check:
        if check.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise click.ClickException(f"{path} failed SQLite's integrity check")
    if not yes:
        click.confirm(f"Replace {url.database} with {path}?", abort=True)
    db.engine.dispose()
    with sqlite3.connect(path) as source, sqlite3.connect(url.database) as target:
        source.backup(target)
    click.echo(f"restored {path} into {url.database}", file=sys.stdout)


@click.command()
@with_appcontext
def housekeeping() -> None:
    """Time-based changes for cron: expire sample holds, drop old push receipts, remove orphan media."""
    from .housekeeping import run

    summary = run(current_app.config)
    db.session.commit()
    click.echo(" ".join(f"{k}={v}" for k, v in summary.items()))
