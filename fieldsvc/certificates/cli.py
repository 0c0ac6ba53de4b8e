"""``flask --app app keys ...`` and ``flask --app app certificates ...``."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from ..auth.principal import Actor
from ..errors import Problem
from ..extensions import db

CLI_ACTOR = Actor(user_id=0, username="cli", role="official")


def _fail(problem: Problem) -> None:
    db.session.rollback()
    details = f" {problem.details}" if problem.details else ""
    raise click.ClickException(f"{problem.code}: {problem.message}{details}")


@click.group()
def keys() -> None:
    """Certificate signing keys (Ed25519) in <instance>/keys."""


@keys.command("list")
@with_appcontext
def list_keys() -> None:
    """Every key that verifies: key id, status, created."""
    from . import services

    ring = services.keyring(current_app.config)
    for key in ring.keys:
        click.echo(f"{key.kid}  {ring.status(key):8}  {key.created_at.isoformat()}")


@keys.command("rotate")
@with_appcontext
def rotate_keys() -> None:
    """Retire the signing key and make a new one; certificates signed before still verify."""
    from .services import keyring
    from .signing import KeyRingError

    try:
        key = keyring(current_app.config).rotate()
    except KeyRingError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"new signing key {key.kid}")


@click.group()
def certificates() -> None:
    """Issue certificates and print label sheets."""


@certificates.command("issue")
@click.option("--village", default=None, help="A village (division code).")
@click.option("--farm-park", "farm_park", default=None, help="A farm park code.")
@click.option("--parcels", is_flag=True, help="Issue for every qualifying parcel of it instead of the area itself.")
@click.option("--valid-days", type=click.IntRange(1, 3 * 366), default=None)
@with_appcontext
def issue(village: str | None, farm_park: str | None, parcels: bool, valid_days: int | None) -> None:
    """Issue for a village or farm park (or, with --parcels, its qualifying parcels); list the refusals."""
    from . import services

    if bool(village) == bool(farm_park):
        raise click.UsageError("give exactly one of --village or --farm-park")
    area_type, code = ("village", village) if village else ("farm_park", farm_park)
    try:
        subjects = ([("parcel", p) for p in services.parcels_of(area_type, code, CLI_ACTOR)] if parcels
                    else [(area_type, code)])
        outcome = services.issue_many(subjects, CLI_ACTOR, current_app.config, valid_days)
        db.session.commit()
    except Problem as problem:
        _fail(problem)
    for cert in outcome.issued:
        click.echo(f"issued {cert.code} {cert.subject_type} {cert.subject_code} "
                   f"{services.codes.verify_url(current_app.config['PUBLIC_BASE_URL'], cert.code)}")
    for subject, reasons in outcome.refused.items():
        click.echo(f"not qualified {subject}: " + "; ".join(reasons))
    click.echo(f"{len(outcome.issued)} issued, {len(outcome.refused)} not qualified")


@certificates.command("labels")
@click.option("--codes", "code_text", required=True, help="Certificate codes, comma separated.")
@click.option("--template", default="a4_3x7", show_default=True)
@click.option("--start-slot", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@with_appcontext
def labels(code_text: str, template: str, start_slot: int, out: Path) -> None:
    """Write a label sheet PDF for valid certificates."""
    from . import services

    config = current_app.config
    try:
        code_list = services.parse_codes(code_text, config["LABELS_MAX_CODES"])
        body = services.labels_pdf(code_list, template, start_slot, CLI_ACTOR, config)
    except Problem as problem:
        _fail(problem)
    out.write_bytes(body)
    click.echo(f"wrote {len(code_list)} labels to {out} ({len(body)} bytes)")


@click.group()
def issuer() -> None:
    """The issuing institute's identity, printed on certificates and labels and signed as ``iss``."""


@issuer.command("set")
@click.option("--id", "ident", required=True, help="A short identifier, e.g. JXSSRI (A-Z, 0-9, '-').")
@click.option("--name-zh", required=True)
@click.option("--name-en", required=True)
@click.option("--address", required=True)
@click.option("--contact", required=True, help="Telephone or e-mail the public page shows.")
@click.option("--seal", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The seal as a PNG (kept from the previous version when left out).")
@click.option("--co-issuer-zh", default=None)
@click.option("--co-issuer-en", default=None)
@with_appcontext
def set_issuer(ident: str, name_zh: str, name_en: str, address: str, contact: str, seal: Path | None,
               co_issuer_zh: str | None, co_issuer_en: str | None) -> None:
    """Set the issuer identity: a new version when anything changed (audited); earlier versions are kept."""
    from .issuer import set_issuer as set_identity

    data = {"ident": ident, "name_zh": name_zh, "name_en": name_en, "address": address, "contact": contact,
            "co_issuer_zh": co_issuer_zh, "co_issuer_en": co_issuer_en,
            "seal_png": seal.read_bytes() if seal else None}
    try:
        row, created = set_identity(data, CLI_ACTOR.label)
        db.session.commit()
    except Problem as problem:
        _fail(problem)
    click.echo(f"{'set' if created else 'unchanged'}: issuer {row.ident}:{row.version} {row.name_zh} / {row.name_en}")


@issuer.command("show")
@with_appcontext
def show_issuer() -> None:
    """The current issuer identity and how many versions are kept."""
    from .issuer import all_issuers

    rows = all_issuers()
    if not rows:
        click.echo("no issuer set (certificates name 'fieldsvc'); use: flask --app app issuer set ...")
        return
    row = rows[0]
    click.echo(f"{row.ident}:{row.version}  {row.name_zh} / {row.name_en}\n  {row.address} · {row.contact}"
               f"\n  seal: {row.seal_sha256 or 'none'}  co-issuer: {row.co_issuer or 'none'}"
               f"\n  {len(rows)} version(s)")
