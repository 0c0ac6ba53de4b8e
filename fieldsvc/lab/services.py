"""Lab imports, QC holds, review (four-eyes), re-tests and held results. Flush, never commit.

An import is one QC batch and all or nothing: the file is parsed and planned
completely (sample matching, lab-ID aliases, QC, re-test versions) before the
first write, so a row error leaves nothing behind, and a dry run is the same
plan without the writes.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, insert, or_, select, update

from .. import access
from ..audit.services import Change, insert_rows, record, record_many
from ..auth.principal import Actor
from ..dbtypes import isoformat, utcnow
from ..dbutil import core_execute
from ..errors import Problem, conflict, forbidden, not_found, validation_failed
from ..events import ResultsApproved, publish
from ..extensions import db
from ..paging import Page, paginate
from ..samples.models import Sample
from .analytes import resolve_analyte
from .importing import ResultRow, RowError, XlsxLimits, parse_results, read_table, sample_code_key, sha256_of
from .models import Approval, LabImport, LabResult, LabSampleAlias, ReferenceMaterial
from .qc import CertifiedValue, QcOutcome, judge_qc
from .units import UnitError, convert

CHUNK = 500  # keys per IN (...) query
INSERT_CHUNK = 5000  # result rows per executemany (and per progress tick)
MAX_REPORTED_ROWS = 1000  # row errors shown in one 422
MAX_CODE = 64  # sample codes, lab IDs, CRM codes: as long as Sample.code

Progress = Callable[[int, int], Any]  # (rows just written, rows in all)


# --- planning an import (reads only) ---------------------------------------------------------

@dataclass
class _Plan:
    """Everything an import would write, computed before writing anything."""

    rows: list[ResultRow]
    sample_ids: list[str | None]  # per row; None for held and QC rows
    codes: list[str]  # per row: the bag code the result belongs to (after lab-ID aliases)
    keys: list[str]  # per row: that code's match key
    previous: list[tuple[int, int] | None]  # per row: (id, version) of the result it supersedes
    versions: list[int]  # per row: its version (after every stored one of its series, seen or not)
    qc: QcOutcome
    new_aliases: dict[str, tuple[str, str]]  # lab_id_key → (lab_id, sample_code)
    errors: list[RowError]
    warnings: list[str]
    held_codes: list[str] = field(default_factory=list)

    @property
    def qc_rows(self) -> int:
        return sum(1 for r in self.rows if r.qc_type is not None)

    @property
    def held(self) -> int:
        return sum(1 for r, s in zip(self.rows, self.sample_ids, strict=True) if r.qc_type is None and s is None)

    @property
    def qc_held(self) -> int:
        return sum(1 for r in self.rows if r.qc_type is None and self.qc.is_held(r.analyte))

    @property
    def superseding(self) -> int:
        return sum(1 for p in self.previous if p is not None)

    def counts(self) -> dict[str, int]:
        held, qc_rows = self.held, self.qc_rows
        return {"rows": len(self.rows), "accepted": len(self.rows) - held - qc_rows, "held": held,
                "qc_rows": qc_rows, "qc_held": self.qc_held, "superseded": self.superseding}


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _folded_code() -> Any:
    """A sample's bag code as its match key in SQL (``sample_code_key``: no spaces or tabs, lower case)."""
    return func.lower(func.replace(func.replace(Sample.code, " ", ""), "\t", ""))


def _samples_by_key(codes: Mapping[str, str], actor: Actor) -> dict[str, tuple[str, str]]:
    """Sample (id, code) for each code key; exact codes first (indexed), then case/space-tolerant.

    Only samples the importer may see: another county's bag code is, for this import, a sample
    not yet synced (its result is held and never links to that county's sample).
    """
    found: dict[str, tuple[str, str]] = {}
    live = and_(Sample.deleted_at.is_(None), *access.sample_filter(
        actor, Sample.county_code, Sample.parcel_code, Sample.device_pk, Sample.created_by))
    raw = sorted(set(codes.values()))
    for chunk in _chunks(raw):
        for sid, code in db.session.execute(select(Sample.id, Sample.code).where(Sample.code.in_(chunk), live)):
            found.setdefault(sample_code_key(code), (sid, code))
    missing = sorted(k for k in codes if k not in found)
    folded = _folded_code()
    for chunk in _chunks(missing):
        for sid, code in db.session.execute(select(Sample.id, Sample.code).where(folded.in_(chunk), live)):
            if sample_code_key(code) in codes:
                found.setdefault(sample_code_key(code), (sid, code))
    return found


def _stored_aliases(lab: str, keys: Iterable[str]) -> dict[str, LabSampleAlias]:
    found: dict[str, LabSampleAlias] = {}
    for chunk in _chunks(sorted(set(keys))):
        stmt = select(LabSampleAlias).where(LabSampleAlias.lab == lab, LabSampleAlias.lab_id_key.in_(chunk))
        found.update({a.lab_id_key: a for a in db.session.scalars(stmt)})
    return found


def _check_lengths(rows: Sequence[ResultRow], errors: dict[int, dict[str, str]]) -> None:
    for row in rows:
        for name, text in (("sample_code", row.sample_code), ("lab_id", row.lab_id),
                           ("duplicate_of", row.duplicate_of), ("crm", row.crm)):
            if text and len(text) > MAX_CODE:
                errors[row.line][name] = f"At most {MAX_CODE} characters."


def _aliases(rows: Sequence[ResultRow], lab: str, errors: dict[int, dict[str, str]]
             ) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """lab_id key → bag code (stored and from this file), and the file's new aliases.

    A lab ID that names two different bag codes is a row error: matching by it
    would otherwise attach results to the wrong sample.
    """
    in_file: dict[str, tuple[str, str, int]] = {}
    for row in rows:
        if row.lab_id is None or row.qc_type is not None:
            continue
        key = sample_code_key(row.lab_id)
        first = in_file.setdefault(key, (row.lab_id, row.sample_code, row.line))
        if sample_code_key(first[1]) != row.sample_code_key:
            errors[row.line]["lab_id"] = f"Lab ID {row.lab_id} names {first[1]} on line {first[2]}."
    stored = _stored_aliases(lab, set(in_file) | {r.sample_code_key for r in rows if r.qc_type is None})
    mapping = {key: alias.sample_code for key, alias in stored.items()}
    new: dict[str, tuple[str, str]] = {}
    for key, (lab_id, code, line) in in_file.items():
        known = stored.get(key)
        if known is None:
            new[key] = (lab_id, code)
            mapping[key] = code
        elif sample_code_key(known.sample_code) != sample_code_key(code):
            errors[line]["lab_id"] = f"Lab ID {lab_id} already names sample {known.sample_code}."
    return mapping, new


def _current_versions(series: Iterable[str], actor: Actor) -> dict[tuple[str, str], tuple[int, int]]:
    """(series, analyte) → (id, version) of the result not yet superseded, among those the importer
    may see: a re-test supersedes only a result of a sample its lab may test."""
    found: dict[tuple[str, str], tuple[int, int]] = {}
    for chunk in _chunks(sorted(set(series))):
        stmt = select(LabResult.series, LabResult.analyte, LabResult.id, LabResult.version).where(
            LabResult.series.in_(chunk), LabResult.superseded_by.is_(None), *result_scope(actor))
        for s, analyte, rid, version in db.session.execute(stmt):
            found[(s, analyte)] = (rid, version)
    return found


def _top_versions(series: Iterable[str]) -> dict[tuple[str, str], int]:
    """(series, analyte) → the highest stored version, whoever may see it: a bag code's series is
    shared by every county's results for that code, and a version is unique within it."""
    found: dict[tuple[str, str], int] = {}
    for chunk in _chunks(sorted(set(series))):
        stmt = (select(LabResult.series, LabResult.analyte, func.max(LabResult.version))
                .where(LabResult.series.in_(chunk)).group_by(LabResult.series, LabResult.analyte))
        found.update({(s, analyte): top for s, analyte, top in db.session.execute(stmt)})
    return found


def _crms(rows: Sequence[ResultRow]) -> dict[str, dict[str, CertifiedValue]]:
    codes = {_crm_key(r.crm) for r in rows if r.qc_type == "crm" and r.crm}
    found: dict[str, dict[str, CertifiedValue]] = {}
    for chunk in _chunks(sorted(codes)):
        for rm in db.session.scalars(select(ReferenceMaterial).where(ReferenceMaterial.code_key.in_(chunk))):
            found.setdefault(rm.code, {})[rm.analyte] = CertifiedValue(
                Decimal(rm.value), Decimal(rm.u) if rm.u is not None else None, rm.reference_only)
    return found


def _crm_key(code: str) -> str:
    return sample_code_key(code)


def plan_import(rows: Sequence[ResultRow], parse_errors: Sequence[RowError], parse_warnings: Sequence[str],
                lab: str, actor: Actor) -> _Plan:
    """Match samples (codes, then lab-ID aliases), judge QC, find the versions re-tests supersede."""
    errors: dict[int, dict[str, str]] = defaultdict(dict)
    for e in parse_errors:
        errors[e.line].update(e.errors)
    _check_lengths(rows, errors)
    alias_of, new_aliases = _aliases(rows, lab, errors)
    regular = [r for r in rows if r.qc_type is None]
    samples = _samples_by_key({r.sample_code_key: r.sample_code for r in regular}, actor)
    # A code that is no sample but a lab ID we know stands for that lab ID's bag code.
    via_alias = {r.sample_code_key: alias_of[r.sample_code_key] for r in regular
                 if r.sample_code_key not in samples and r.sample_code_key in alias_of}
    samples.update(_samples_by_key({sample_code_key(c): c for c in via_alias.values()}, actor))
    alias_keys = {k: sample_code_key(c) for k, c in via_alias.items()}
    sample_ids: list[str | None] = []
    codes: list[str] = []
    keys: list[str] = []
    for r in rows:
        code, key, match = r.sample_code, r.sample_code_key, None
        if r.qc_type is None:
            if key in via_alias:
                code, key = via_alias[key], alias_keys[key]
            match = samples.get(key)
        sample_ids.append(match[0] if match else None)
        codes.append(match[1] if match else code)
        keys.append(key)
    regular_keys = [k for r, k in zip(rows, keys, strict=True) if r.qc_type is None]
    current = _current_versions(regular_keys, actor)
    top = _top_versions(regular_keys)
    previous = [current.get((k, r.analyte)) if r.qc_type is None else None for r, k in zip(rows, keys, strict=True)]
    versions = [top.get((k, r.analyte), 0) + 1 if r.qc_type is None else 1 for r, k in zip(rows, keys, strict=True)]
    qc = judge_qc(rows, _crms(rows))
    plan = _Plan(list(rows), sample_ids, codes, keys, previous, versions, qc, new_aliases,
                 [RowError(line, errors[line]) for line in sorted(errors) if errors[line]], list(parse_warnings))
    held = sorted({c for r, c, s in zip(rows, codes, sample_ids, strict=True) if r.qc_type is None and s is None})
    plan.held_codes = held
    if held:
        shown = ", ".join(held[:20]) + (" …" if len(held) > 20 else "")
        plan.warnings.append(f"{plan.held} results for {len(held)} sample codes not yet synced are held "
                             f"until the samples arrive: {shown}.")
    for analyte, items in sorted(qc.held.items()):
        n = sum(1 for r in regular if r.analyte == analyte)
        reasons = "; ".join(f"line {i['line']}: {i['message']}" for i in items)
        plan.warnings.append(f"QC failed for {analyte} ({reasons}); {n} {analyte} results held by QC.")
    return plan


# --- importing -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImportOutcome:
    lab_import: LabImport | None  # None for a dry run
    created: bool  # False: this file was imported before (same SHA-256), nothing added
    report: dict[str, Any]


def import_results(data: bytes, filename: str, actor: Actor, *, lab: str | None = None, dry_run: bool = False,
                   progress: Progress | None = None, xlsx_limits: XlsxLimits | None = None) -> ImportOutcome:
    """Import a lab file: all or nothing, idempotent by content hash, held rows for unknown samples.

    :raise Problem: 422 ``validation_failed`` with ``details.rows`` when any row is wrong;
        422 ``unreadable_file`` when the file is no CSV/XLSX; 413 ``import_too_large`` naming the
        setting when an XLSX would unpack past ``xlsx_limits``.
    """
    if not data:
        raise validation_failed({"file": ["is empty"]})
    sha = sha256_of(data)
    lab = (lab or actor.username).strip()[:120] or actor.username
    first = db.session.scalar(select(LabImport).where(LabImport.sha256 == sha))
    if first is not None and not access.may_see_county(actor, first.county_code):
        # the same bytes came from another county: its import is not this caller's to see
        raise conflict("already_imported", "This file was already imported by an account of another county.")
    if first is not None and not dry_run:
        return ImportOutcome(first, False, import_dict(first) | {"duplicate": True})
    table = read_table(data, filename, xlsx_limits)
    if not table.rows:
        raise validation_failed({"file": ["has no rows"]})
    parsed = parse_results(table)
    plan = plan_import(parsed.rows, parsed.errors, parsed.warnings, lab, actor)
    if dry_run:
        report = {"dry_run": True, "filename": filename, "sha256": sha, "layout": parsed.layout, **plan.counts(),
                  "warnings": plan.warnings, "errors": [e.to_dict() for e in plan.errors[:MAX_REPORTED_ROWS]],
                  "error_count": len(plan.errors), "qc": [_json_safe(i.to_dict()) for i in plan.qc.items],
                  "already_imported": str(first.id) if first is not None else None,
                  **_dry_run_details(plan)}
        return ImportOutcome(None, False, report)
    if plan.errors:
        raise Problem(422, "validation_failed",
                      f"{len(plan.errors)} rows have errors; nothing was imported.",
                      rows=[e.to_dict() for e in plan.errors[:MAX_REPORTED_ROWS]], error_count=len(plan.errors))
    if not plan.rows:
        raise validation_failed({"file": ["has a header but no results"]})
    lab_import = _write(plan, sha, filename, lab, parsed.layout or "long", table, actor, progress)
    return ImportOutcome(lab_import, True, import_dict(lab_import))


def _converted(row: ResultRow) -> bool:
    raw = row.raw_unit.strip().replace("µ", "u").replace("μ", "u").lower()
    return bool(raw) and raw != row.unit.replace("µ", "u").lower()


def _dry_run_details(plan: _Plan) -> dict[str, Any]:
    """What a person checks before committing: unit conversions, censored values, held bag codes."""
    converted = [r for r in plan.rows if _converted(r)]
    censored = [r for r in plan.rows if r.censored]

    def shown(rows: Sequence[ResultRow]) -> list[dict[str, Any]]:
        return [{"line": r.line, "sample_code": r.sample_code, "analyte": r.analyte, "raw_value": r.raw_value,
                 "raw_unit": r.raw_unit, "value": _dec(r.value), "detection_limit": _dec(r.detection_limit),
                 "unit": r.unit, "qualifier": r.qualifier} for r in rows[:MAX_REPORTED_ROWS]]

    return {"converted": len(converted), "converted_rows": shown(converted), "censored": len(censored),
            "censored_rows": shown(censored), "held_sample_codes": plan.held_codes[:MAX_REPORTED_ROWS]}


# Insert order of a result row: the per-import constants first, then the per-row values.
RESULT_COLUMNS = ("import_id", "status", "approvals", "created_by", "created_at", "superseded_by", "reviewed_at",
                  "rejected_reason", "line", "sample_id", "sample_code", "sample_code_key", "series", "lab_id",
                  "analyte", "qualifier", "value", "detection_limit", "unit", "raw_value", "raw_unit", "method",
                  "qc_type", "duplicate_of", "crm", "qc_flags", "qc_hold", "version", "supersedes")


class _RowWriter:
    """``executemany`` of plain tuples straight on the driver, in the session's transaction.

    An import writes up to a few hundred thousand rows; SQLAlchemy's per-row
    parameter processing would cost more than parsing the file. Values are
    bound with each column type's own bind processor, so they are stored exactly
    as the ORM would store them (JSON text, SQLite booleans and datetimes).
    """

    def __init__(self, table: Any, columns: Sequence[str]) -> None:
        self.table, self.columns = table, columns
        self.connection = db.session.connection()
        self.dialect = self.connection.dialect
        self.mark = "?" if self.dialect.paramstyle == "qmark" else "%s"
        quote = self.dialect.identifier_preparer.quote
        self.sql = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
                    f"VALUES ({', '.join([self.mark] * len(columns))})")

    def processor(self, column: str) -> Callable[[Any], Any]:
        type_ = self.table.c[column].type
        found = type_.dialect_impl(self.dialect).bind_processor(self.dialect)
        return found or (lambda value: value)

    def bind(self, values: Mapping[str, Any]) -> tuple[Any, ...]:
        """The leading constant columns, bound once."""
        return tuple(self.processor(c)(values[c]) for c in self.columns[: len(values)])

    def insert(self, rows: list[tuple[Any, ...]]) -> None:
        self.connection.exec_driver_sql(self.sql, rows)

    def update_superseded(self, pairs: list[tuple[int, int]]) -> None:
        """(new id, old id): the old result is now superseded by the new one."""
        quote = self.dialect.identifier_preparer.quote
        sql = (f"UPDATE {quote(self.table.name)} SET {quote('superseded_by')} = {self.mark} "
               f"WHERE {quote('id')} = {self.mark}")
        for chunk in _chunks(pairs, INSERT_CHUNK):
            self.connection.exec_driver_sql(sql, list(chunk))


def _write(plan: _Plan, sha: str, filename: str, lab: str, layout: str, table: Any, actor: Actor,
           progress: Progress | None) -> LabImport:
    now = utcnow()
    counts = plan.counts()
    lab_import = LabImport(
        sha256=sha, filename=filename[:255], lab=lab, created_by=actor.label, created_at=now, layout=layout,
        county_code=None if access.province_wide(actor) else actor.county_code,
        file_kind=table.kind, encoding=table.encoding, rows=counts["rows"], accepted=counts["accepted"],
        held=counts["held"], qc_rows=counts["qc_rows"], qc_held=counts["qc_held"],
        superseded=counts["superseded"],
        outcomes={"warnings": plan.warnings, "held_sample_codes": plan.held_codes[:MAX_REPORTED_ROWS],
                  "qc": [_json_safe(i.to_dict()) for i in plan.qc.items]})
    db.session.add(lab_import)
    db.session.flush()
    if plan.new_aliases:
        db.session.execute(insert(LabSampleAlias), [
            {"lab": lab, "lab_id": lab_id, "lab_id_key": key, "sample_code": code, "import_id": lab_import.id,
             "created_at": now} for key, (lab_id, code) in sorted(plan.new_aliases.items())])
    qc_items = {(i.line, i.analyte): _json_safe(i.to_dict()) for i in plan.qc.items}
    held_flags = {a: [{"flag": "qc_hold", **_json_safe(i)} for i in items] for a, items in plan.qc.held.items()}
    no_flags: list[dict[str, Any]] = []
    writer = _RowWriter(LabResult.__table__, RESULT_COLUMNS)
    constant = writer.bind({"import_id": lab_import.id, "status": "pending", "approvals": 0, "created_by": actor.label,
                            "created_at": now, "superseded_by": None, "reviewed_at": None, "rejected_reason": None})
    flags_of = writer.processor("qc_flags")
    hold_of = writer.processor("qc_hold")
    flag_text: dict[int, Any] = {}  # one JSON text per distinct flag list (most rows share [])
    batch: list[tuple[Any, ...]] = []
    rows = zip(plan.rows, plan.sample_ids, plan.codes, plan.keys, plan.previous, plan.versions, strict=True)
    for row, sample_id, code, key, prev, version in rows:
        regular = row.qc_type is None
        if regular:
            flags = held_flags.get(row.analyte, no_flags)
        else:
            item = qc_items.get((row.line, row.analyte))
            flags = [{"flag": "qc_item", **item}] if item else no_flags
        text = flag_text.get(id(flags))
        if text is None:
            text = flag_text[id(flags)] = flags_of(flags)
        batch.append((*constant, row.line, sample_id, code, key, key if regular else None, row.lab_id, row.analyte,
                      row.qualifier, _dec(row.value), _dec(row.detection_limit), row.unit, row.raw_value,
                      row.raw_unit, row.method, row.qc_type, row.duplicate_of, row.crm, text,
                      hold_of(bool(regular and flags)), version, prev[0] if prev else None))
        if len(batch) == INSERT_CHUNK:
            writer.insert(batch)
            if progress:
                progress(len(batch), len(plan.rows))
            batch = []
    if batch:
        writer.insert(batch)
        if progress:
            progress(len(batch), len(plan.rows))
    changes = [Change("lab_import", str(lab_import.id), "import", after=import_dict(lab_import))]
    if plan.superseding:
        pairs = db.session.execute(select(LabResult.supersedes, LabResult.id).where(
            LabResult.import_id == lab_import.id, LabResult.supersedes.is_not(None))).all()
        writer.update_superseded([(new, old) for old, new in pairs])
        changes += [Change("lab_result", str(old), "supersede", before={"superseded_by": None},
                           after={"superseded_by": str(new)}) for old, new in pairs]
    record_many(actor.label, changes, {"sha256": sha, "filename": filename[:255]})
    return lab_import


def _dec(value: Decimal | None) -> str | None:
    """Exact positional text (never ``1E-7``), as the API shows it."""
    return None if value is None else format(value, "f")


def _json_safe(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _dec(value)
    if isinstance(value, Mapping):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def import_dict(lab_import: LabImport) -> dict[str, Any]:
    return {"import_id": str(lab_import.id), "rows": lab_import.rows, "accepted": lab_import.accepted,
            "held": lab_import.held, "warnings": list((lab_import.outcomes or {}).get("warnings", [])),
            "qc_rows": lab_import.qc_rows, "qc_held": lab_import.qc_held, "superseded": lab_import.superseded,
            "sha256": lab_import.sha256, "filename": lab_import.filename, "lab": lab_import.lab,
            "layout": lab_import.layout, "created_by": lab_import.created_by,
            "created_at": isoformat(lab_import.created_at)}


def import_scope(actor: Actor) -> list[ColumnElement[bool]]:
    """``access.lab_import_filter``: an import belongs to its importer's county."""
    return access.lab_import_filter(actor, LabImport.county_code, LabImport.id)


def list_imports(actor: Actor, limit: int, cursor: str | None) -> Page:
    """Imports the caller may see, oldest first, one page."""
    rows, after = paginate(select(LabImport).where(*import_scope(actor)), LabImport.id, limit, cursor)
    return Page([import_dict(r) for r in rows], after)


def list_results(args: Mapping[str, Any], actor: Actor, limit: int) -> Page:
    """Results (every version) the caller may see, filtered, one page."""
    rows, after = paginate(select(LabResult).where(*result_filter(args, actor)), LabResult.id, limit,
                           args.get("cursor"))
    return Page([result_dict(r) for r in rows], after)


def get_import(import_id: int, actor: Actor) -> LabImport:
    lab_import = db.session.scalar(select(LabImport).where(LabImport.id == import_id, *import_scope(actor)))
    if lab_import is None:
        raise not_found("lab_import", import_id)
    return lab_import


# --- held results ----------------------------------------------------------------------------

def link_held_results(sample: Sample, actor_label: str = "system") -> int:
    """Attach results that were held for this sample's bag code (one sample)."""
    return link_held_results_for([(sample.id, sample.code)], actor_label)


def link_held_results_for(samples: Sequence[tuple[str, str]], actor_label: str = "system") -> int:
    """Attach results held for these new samples' bag codes; sync calls this for every stored batch.

    ``samples`` are ``(sample_id, bag_code)`` pairs. One indexed query per chunk when nothing is
    held, so a push of 500 new samples stays cheap. A held result links only to a sample its
    importer may see (``access.may_see_county``): another county's lab cannot attach results to
    this county's samples by naming their bag codes early. Returns how many results were linked.
    Flushes; the caller's transaction commits.
    """
    if core_execute(select(LabResult.id).where(LabResult.sample_id.is_(None)).limit(1)).first() is None:
        return 0  # nothing is held (the usual case): one index probe instead of a lookup per chunk
    by_key = {sample_code_key(code): sample_id for sample_id, code in samples}
    found = []
    for chunk in _chunks(list(by_key)):
        found += core_execute(select(LabResult.id, LabResult.series, LabResult.status, LabImport.county_code)
                              .join(LabImport, LabImport.id == LabResult.import_id)
                              .where(LabResult.series.in_(chunk), LabResult.sample_id.is_(None))).all()
    if not found:
        return 0
    counties = dict(core_execute(select(Sample.id, Sample.county_code).where(
        Sample.id.in_(sorted({by_key[series] for _, series, _, _ in found})))).all())
    held = [(rid, series, status) for rid, series, status, county in found
            if access.covers(county, counties.get(by_key[series]))]
    if not held:
        return 0
    for rid, series, _ in held:
        db.session.execute(update(LabResult).where(LabResult.id == rid).values(sample_id=by_key[series]),
                           execution_options={"synchronize_session": False})
    record_many(actor_label, [Change("lab_result", str(rid), "link", before={"sample_id": None},
                                     after={"sample_id": by_key[series]}) for rid, series, _ in held])
    linked = {rid for rid, _, _ in held}
    for obj in list(db.session.identity_map.values()):  # loaded copies would show the old null
        if isinstance(obj, LabResult) and obj.id in linked:
            db.session.expire(obj, ["sample_id"])
    approved = {by_key[series] for _, series, status in held if status == "approved"}
    if approved:
        on_results_approved(sorted(approved))
    return len(held)


def link_held_result(result_id: int, actor: Actor) -> int:
    """Link a held result (and any other held for the same bag code) to its sample once a sample
    with that code has arrived within the reach of both the caller and the result's importer.

    :raise 404: not a result the caller may see. :raise 409 already_linked, sample_not_arrived.
    """
    result = get_result(result_id, actor)
    if result.sample_id is not None:
        raise conflict("already_linked", f"Result {result_id} is already linked to its sample.")
    sample = _arrived_sample(result, actor)
    if sample is None:
        raise conflict("sample_not_arrived", f"No sample with bag code {result.sample_code} has arrived yet; "
                                             "it links by itself when it does.")
    return link_held_results(sample, actor.label)


def _arrived_sample(result: LabResult, actor: Actor) -> Sample | None:
    importer = db.session.scalar(select(LabImport.county_code).where(LabImport.id == result.import_id))
    folded = _folded_code()
    candidates = db.session.scalars(select(Sample).where(
        folded == result.series, Sample.deleted_at.is_(None),
        *access.sample_filter(actor, Sample.county_code, Sample.parcel_code, Sample.device_pk, Sample.created_by)))
    return next((s for s in candidates if access.covers(importer, s.county_code)), None)


# --- reading results -------------------------------------------------------------------------

def result_scope(actor: Actor) -> list[ColumnElement[bool]]:
    """``access.result_filter``: results of samples the caller may see, and held ones of its imports."""
    return access.result_filter(actor, LabResult.sample_id, LabResult.import_id)


def result_filter(args: Mapping[str, Any], actor: Actor) -> list[ColumnElement[bool]]:
    where = result_scope(actor)
    if args.get("sample"):
        value = args["sample"]
        ids = select(Sample.id).where(or_(Sample.id == value, Sample.code == value))
        where.append(or_(LabResult.sample_id.in_(ids), LabResult.series == sample_code_key(value)))
    for name in ("status", "analyte"):
        if args.get(name):
            where.append(getattr(LabResult, name) == args[name])
    if args.get("import_id"):
        where.append(LabResult.import_id == args["import_id"])
    if args.get("current"):
        where.append(LabResult.superseded_by.is_(None))
    return where


def get_result(result_id: int, actor: Actor, *, for_update: bool = False) -> LabResult:
    stmt = select(LabResult).where(LabResult.id == result_id, *result_scope(actor))
    result = db.session.scalar(stmt.with_for_update() if for_update else stmt)
    if result is None:
        raise not_found("lab_result", result_id)
    return result


def result_dict(r: LabResult) -> dict[str, Any]:
    """The contract's item (DESIGN §4.5) plus review and provenance fields."""
    return {"id": str(r.id), "sample_id": r.sample_id, "sample_code": r.sample_code, "analyte": r.analyte,
            "value": r.value, "unit": r.unit, "qualifier": r.qualifier, "detection_limit": r.detection_limit,
            "raw_value": r.raw_value, "raw_unit": r.raw_unit, "method": r.method, "status": r.status,
            "version": r.version, "supersedes": _sid(r.supersedes), "superseded_by": _sid(r.superseded_by),
            "qc_flags": r.qc_flags or [], "qc_hold": r.qc_hold, "qc_type": r.qc_type,
            "held": r.sample_id is None and r.qc_type is None, "lab_id": r.lab_id,
            "import_id": str(r.import_id), "batch": str(r.import_id), "line": r.line, "approvals": r.approvals,
            "created_by": r.created_by, "created_at": isoformat(r.created_at),
            "reviewed_at": isoformat(r.reviewed_at), "rejected_reason": r.rejected_reason}


def _sid(value: int | None) -> str | None:
    return None if value is None else str(value)


def latest_approved_results(sample_ids: Iterable[str]) -> dict[str, dict[str, LabResult]]:
    """For grading: per sample and analyte, the approved result with the highest version.

    QC rows are never included; a pending or rejected re-test leaves the earlier
    approved version in force until it is itself approved.
    """
    out: dict[str, dict[str, LabResult]] = {}
    for chunk in _chunks(sorted(set(sample_ids))):
        stmt = (select(LabResult)
                .where(LabResult.sample_id.in_(chunk), LabResult.status == "approved", LabResult.qc_type.is_(None))
                .order_by(LabResult.version))
        for result in db.session.scalars(stmt):
            out.setdefault(result.sample_id, {})[result.analyte] = result
    return out


def on_results_approved(sample_ids: Sequence[str]) -> None:
    """These samples' latest approved results changed: ``ResultsApproved`` re-grades their parcels
    in this transaction (DESIGN §5), so a grade is never stale and a certificate whose subject
    stops qualifying is revoked in the same commit (``fieldsvc.handlers``)."""
    publish(ResultsApproved(tuple(sample_ids)))


# --- review ----------------------------------------------------------------------------------
#
# One set of rules judges a review, whether it comes one result at a time or as a bulk request:
# ``_approval_refusal`` / ``_review_refusal`` return the Problem that refuses it (or None). The
# single endpoints raise it; the bulk ones report its code per id and go on.

BULK_MAX_IDS = 10_000
_REVIEW_COLUMNS = (LabResult.id, LabResult.created_by, LabResult.sample_id, LabResult.qc_type,
                   LabResult.superseded_by, LabResult.status, LabResult.qc_hold, LabResult.qc_flags,
                   LabResult.approvals)


def _review_refusal(result: Any) -> Problem | None:
    """Why this result cannot be reviewed at all (approve or reject), or None."""
    if result.qc_type is not None:
        return conflict("qc_sample", "QC rows are judged per batch, never reviewed or graded.")
    if result.superseded_by is not None:
        return conflict("superseded", f"Result {result.id} was superseded by re-test {result.superseded_by}.",
                        superseded_by=str(result.superseded_by))
    if result.status != "pending":
        return conflict("not_pending", f"Result {result.id} is already {result.status}.",
                        result_status=result.status)
    return None


def _approval_refusal(result: Any, actor: Actor, approved_by_actor: bool) -> Problem | None:
    """Four-eyes, one approval per official, QC hold, a held result: why this approval is refused."""
    if result.created_by == actor.label:
        return forbidden("You imported this result; another official must approve it.", code="self_approval")
    if approved_by_actor:
        return conflict("already_approved", "You have already approved this result.")
    refusal = _review_refusal(result)
    if refusal is not None:
        return refusal
    if result.qc_hold:
        return conflict("qc_hold", "A failing QC item holds this analyte in its batch; it cannot be approved.",
                        qc_flags=result.qc_flags)
    if result.sample_id is None:
        return conflict("held_result", "The sample has not arrived yet; approve once the result is linked.")
    return None


def approve_result(result_id: int, actor: Actor, approvals_required: int) -> LabResult:
    """Four-eyes: the importer may not approve; each official approves once; N approvals make it approved.

    :raise Problem: 403 ``self_approval``; 409 ``already_approved``, ``qc_hold``, ``held_result``,
        ``not_pending``, ``superseded``, ``qc_sample``.
    """
    result = get_result(result_id, actor, for_update=True)
    mine = select(Approval.id).where(Approval.result_id == result.id, Approval.actor == actor.label)
    refusal = _approval_refusal(result, actor, db.session.scalar(mine) is not None)
    if refusal is not None:
        raise refusal
    before = {"status": result.status, "approvals": result.approvals}
    db.session.add(Approval(result_id=result.id, actor=actor.label))
    result.approvals += 1
    if result.approvals >= max(1, approvals_required):
        result.status = "approved"
        result.reviewed_at = utcnow()
    db.session.flush()
    record(actor.label, Change("lab_result", str(result.id), "approve", before=before,
                               after={"status": result.status, "approvals": result.approvals}))
    if result.status == "approved":
        on_results_approved([result.sample_id])
    return result


def reject_result(result_id: int, reason: str, actor: Actor) -> LabResult:
    """A rejected result is kept (with the reason) and never graded; the lab re-tests."""
    result = get_result(result_id, actor, for_update=True)
    refusal = _review_refusal(result)
    if refusal is not None:
        raise refusal
    before = {"status": result.status}
    result.status = "rejected"
    result.rejected_reason = reason
    result.reviewed_at = utcnow()
    db.session.flush()
    record(actor.label, Change("lab_result", str(result.id), "reject", before=before,
                               after={"status": "rejected", "reason": reason}))
    return result


@dataclass(frozen=True)
class BulkOutcome:
    items: list[dict[str, Any]]  # per id, in request order: {id, status} or {id, code, message}
    done: int  # results changed
    refused: int


def review_results(action: str, ids: Sequence[str], actor: Actor, *, reason: str | None = None,
                   approvals_required: int = 1) -> BulkOutcome:
    """Approve or reject many results in the caller's one transaction; each id is judged alone.

    The same rules as one at a time (four-eyes, one approval per official, QC hold, held, already
    decided, superseded, QC rows); a refused id is reported with its code and never blocks the
    others. The reads, writes and audit events go by chunks of ids (a 5,000-result batch is a
    handful of statements), and the parcels of every result this request approved are re-graded
    once, at the end. An id twice in one request is judged once (``duplicate_id`` the second time).
    """
    if action not in ("approve", "reject"):
        raise ValueError(action)
    wanted = sorted({int(i) for i in ids if i.isdigit() and len(i) <= 18})
    rows: dict[int, Any] = {}
    mine: set[int] = set()
    for chunk in _chunks(wanted):
        stmt = select(*_REVIEW_COLUMNS).where(LabResult.id.in_(chunk), *result_scope(actor)).with_for_update()
        rows.update({r.id: r for r in core_execute(stmt)})
        if action == "approve":
            mine.update(core_execute(select(Approval.result_id).where(
                Approval.result_id.in_(chunk), Approval.actor == actor.label)).scalars())
    items: list[dict[str, Any]] = []
    accepted: list[Any] = []
    seen: set[str] = set()
    needed = max(1, approvals_required)
    for key in ids:
        row = rows.get(int(key)) if key.isdigit() and len(key) <= 18 else None
        if key in seen:
            items.append({"id": key, "code": "duplicate_id", "message": "This id came earlier in the list."})
            continue
        seen.add(key)
        if row is None:
            items.append({"id": key, "code": "not_found", "message": f"lab_result {key} was not found."})
            continue
        refusal = (_approval_refusal(row, actor, row.id in mine) if action == "approve"
                   else _review_refusal(row))
        if refusal is not None:
            items.append({"id": key, "code": refusal.code, "message": refusal.message})
            continue
        accepted.append(row)
        if action == "reject":
            status = "rejected"
        else:
            status = "approved" if row.approvals + 1 >= needed else "pending"
        items.append({"id": key, "status": status})
    now = utcnow()
    accepted_ids = [r.id for r in accepted]
    if action == "approve":
        _write_approvals(accepted_ids, actor, needed, now)
        changes = [Change("lab_result", str(r.id), "approve",
                          before={"status": r.status, "approvals": r.approvals},
                          after={"status": "approved" if r.approvals + 1 >= needed else "pending",
                                 "approvals": r.approvals + 1}) for r in accepted]
    else:
        for chunk in _chunks(accepted_ids):
            core_execute(update(LabResult).where(LabResult.id.in_(chunk)).values(
                status="rejected", rejected_reason=reason, reviewed_at=now))
        changes = [Change("lab_result", str(r.id), "reject", before={"status": r.status},
                          after={"status": "rejected", "reason": reason}) for r in accepted]
    if changes:
        record_many(actor.label, changes, {"bulk": len(changes), **({"reason": reason} if reason else {})})
        _expire_results(set(accepted_ids))
    approved_samples = sorted({r.sample_id for r in accepted if action == "approve" and r.approvals + 1 >= needed})
    if approved_samples:
        on_results_approved(approved_samples)
    return BulkOutcome(items, len(accepted), len(items) - len(accepted))


def _write_approvals(result_ids: Sequence[int], actor: Actor, needed: int, now: Any) -> None:
    """One approval row per result and its count (and status, when it reaches ``needed``), by chunk."""
    if not result_ids:
        return
    insert_rows(Approval.__table__, ("actor", "at"), (actor.label, now), ("result_id",), [(r,) for r in result_ids])
    reached = LabResult.approvals + 1 >= needed
    for chunk in _chunks(result_ids):
        core_execute(update(LabResult).where(LabResult.id.in_(chunk)).values(
            approvals=LabResult.approvals + 1,
            status=case((reached, "approved"), else_=LabResult.status),
            reviewed_at=case((reached, now), else_=LabResult.reviewed_at)))


def _expire_results(ids: set[int]) -> None:
    """Loaded copies of results changed with Core statements would show their old values."""
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, LabResult) and obj.id in ids:
            db.session.expire(obj)


# --- reference materials ---------------------------------------------------------------------

def create_reference_material(data: Mapping[str, Any], actor: Actor) -> list[ReferenceMaterial]:
    """Register a CRM's certified values (± U, k = 2) before a batch that uses it is imported."""
    code = data["code"].strip()
    errors: dict[str, list[str]] = {}
    rows: list[ReferenceMaterial] = []
    seen: set[str] = set()
    for i, item in enumerate(data["values"]):
        analyte = resolve_analyte(item["analyte"])
        if analyte is None:
            errors[f"values.{i}.analyte"] = [f"unknown analyte {item['analyte']!r}"]
            continue
        if analyte.key in seen:
            errors[f"values.{i}.analyte"] = [f"{analyte.key} is listed twice"]
            continue
        seen.add(analyte.key)
        unit = item.get("unit")
        unit = analyte.unit if unit is None else unit
        try:
            value = convert(item["value"], unit, analyte)
            u = convert(item["u"], unit, analyte) if item.get("u") is not None else None
        except UnitError as exc:
            errors[f"values.{i}.unit"] = [exc.message]
            continue
        if u is None and not item.get("reference_only"):
            errors[f"values.{i}.u"] = ["a certified value needs its expanded uncertainty U"]
            continue
        rows.append(ReferenceMaterial(code=code, code_key=_crm_key(code), name=data.get("name"),
                                      analyte=analyte.key, value=_dec(value), u=_dec(u), unit=analyte.unit,
                                      reference_only=bool(item.get("reference_only")), created_by=actor.label))
    if errors:
        raise validation_failed(errors)
    exists = select(ReferenceMaterial.id).where(ReferenceMaterial.code_key == _crm_key(code))
    if db.session.scalar(exists) is not None:
        raise conflict("duplicate_code", f"Reference material {code} is already registered.",
                       fields={"code": ["already registered"]})
    db.session.add_all(rows)
    db.session.flush()
    record(actor.label, Change("reference_material", code, "create",
                               after=reference_material_dict(code, rows)))
    return rows


def reference_material_dict(code: str, rows: Sequence[ReferenceMaterial]) -> dict[str, Any]:
    return {"code": code, "name": rows[0].name if rows else None,
            "values": [{"analyte": r.analyte, "value": r.value, "u": r.u, "unit": r.unit,
                        "reference_only": r.reference_only} for r in rows]}


def list_reference_materials() -> list[dict[str, Any]]:
    grouped: dict[str, list[ReferenceMaterial]] = {}
    for rm in db.session.scalars(select(ReferenceMaterial).order_by(ReferenceMaterial.code, ReferenceMaterial.id)):
        grouped.setdefault(rm.code, []).append(rm)
    return [reference_material_dict(code, rows) for code, rows in grouped.items()]


def dumps(value: Any) -> str:
    """JSON for logs and the CLI (Decimals as exact text)."""
    return json.dumps(_json_safe(value), ensure_ascii=False)
