"""Three-way, field-by-field merge of an offline edit into the server's current record.

ANCHORS part 1, lesson 8: merge by field and flag, never last-writer-wins. An edit carries
the version it was based on; comparing that base, the server's current content and the
incoming content field by field gives one of four outcomes:

- ``unchanged``: the incoming content already is the server's (a resend, or a stale edit
  that changed nothing, or both sides made the same change);
- ``applied``: the server hasn't moved since the base, so the incoming content wins whole;
- ``merged``: both sides changed, but different fields; each side's change is kept and
  every field either side changed is listed in ``soft_fields`` (a soft conflict, noted
  for an official, not blocking);
- ``conflict``: both sides changed the same field to different values (``hard_fields``).
  ``merged`` is then a *provisional* record: the server's current value for each hard
  field, each side's change for the others. It does not depend on which phone's clock
  says it was later; device timestamps (``collected_at`` included) are compared as plain
  values and never order anything. Both bodies are kept by the caller for an official.

With no base (``base=None``) nothing can be attributed to either side, so any difference
is a conflict with every differing field hard.

Fields compare the way the content hash does (``samples.content``): numbers by value,
nested objects such as ``location`` as one whole field, kept ``raw`` values ignored.
``media`` is a manifest keyed by sha256, so when both sides changed it the manifests are
merged as sets: a file either side added is kept, a file either side removed is dropped,
and only the same file described differently by both sides is a hard conflict. Photos
taken on two phones for the same sample then never cost each other.
Server-made keys (``id``, ``version``, ``flags``, ...) in the inputs are ignored and not
copied into ``merged``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from fieldsvc.samples.content import SERVER_MADE, canonical_field

MergeStatus = Literal["applied", "merged", "conflict", "unchanged"]
_MISSING: Any = object()
_CLASH: Any = object()


@dataclass(frozen=True)
class MergeResult:
    """The outcome of ``merge_fields``.

    ``provisional`` maps each hard field to the value kept for now (the server's);
    ``incoming_values`` maps it to the value the phone sent, so both can be shown.
    """

    status: MergeStatus
    merged: dict[str, Any]
    soft_fields: tuple[str, ...] = ()
    hard_fields: tuple[str, ...] = ()
    provisional: dict[str, Any] = field(default_factory=dict)
    incoming_values: dict[str, Any] = field(default_factory=dict)


def merge_fields(
    base: Mapping[str, Any] | None, server: Mapping[str, Any], incoming: Mapping[str, Any]
) -> MergeResult:
    """Merge ``incoming`` (edited from ``base``) into ``server``; see the module docstring."""
    names = _field_names(server, incoming, base or {})
    if all(_same(name, server, incoming) for name in names):
        return MergeResult("unchanged", _content(server, names))
    if base is None:
        hard = [name for name in names if not _same(name, server, incoming)]
        return _conflict(_content(server, names), [], hard, server, incoming)
    if all(_same(name, base, server) for name in names):
        return MergeResult("applied", _content(incoming, names))
    return _three_way(base, server, incoming, names)


def _three_way(
    base: Mapping[str, Any], server: Mapping[str, Any], incoming: Mapping[str, Any], names: list[str]
) -> MergeResult:
    merged: dict[str, Any] = {}
    soft: list[str] = []
    hard: list[str] = []
    for name in names:
        value, kind = _merge_one(name, base, server, incoming)
        if value is not _MISSING:
            merged[name] = value
        if kind == "soft":
            soft.append(name)
        elif kind == "hard":
            hard.append(name)
    if hard:
        return _conflict(merged, soft, hard, server, incoming)
    if all(_same(name, merged, server) for name in names):
        return MergeResult("unchanged", _content(server, names))
    return MergeResult("merged", merged, soft_fields=tuple(sorted(soft)))


def _merge_one(
    name: str, base: Mapping[str, Any], server: Mapping[str, Any], incoming: Mapping[str, Any]
) -> tuple[Any, str]:
    """The value to keep for one field and how it came about: ``same``, ``soft`` or ``hard``."""
    ours, theirs = server.get(name, _MISSING), incoming.get(name, _MISSING)
    if _same(name, server, incoming):
        return ours, "same"
    if _same(name, base, incoming):
        return ours, "soft"  # only the server changed it
    if _same(name, base, server):
        return theirs, "soft"  # only the phone changed it
    if name == "media":
        union = merge_media(base.get(name), server.get(name), incoming.get(name))
        if union is not None:
            return union, "soft"
    return ours, "hard"


def _conflict(
    merged: dict[str, Any],
    soft: list[str],
    hard: list[str],
    server: Mapping[str, Any],
    incoming: Mapping[str, Any],
) -> MergeResult:
    return MergeResult(
        "conflict",
        merged,
        soft_fields=tuple(sorted(soft)),
        hard_fields=tuple(sorted(hard)),
        provisional={name: server.get(name) for name in sorted(hard)},
        incoming_values={name: incoming.get(name) for name in sorted(hard)},
    )


def merge_media(base: Any, server: Any, incoming: Any) -> list[dict[str, Any]] | None:
    """Three-way merge of media manifests as sets keyed by sha256; None when they clash.

    Kept: files on both sides, and files one side added since the base. Dropped: files
    one side removed (unless the other side changed that file's entry: a clash). Order:
    the server's entries first, then the phone's additions in its order.
    """
    old, ours, theirs = (_by_sha(m) for m in (base or [], server or [], incoming or []))
    if old is None or ours is None or theirs is None:
        return None
    result = []
    for sha in [*ours, *(s for s in theirs if s not in ours)]:
        entry = _merge_entry(old.get(sha), ours.get(sha), theirs.get(sha))
        if entry is _CLASH:
            return None
        if entry is not None:
            result.append(entry)
    return result


def _merge_entry(old: Any, ours: Any, theirs: Any) -> Any:
    """One manifest entry, three ways; None means "not in the result"."""
    if _same_value(ours, theirs):
        return ours
    if _same_value(old, theirs):
        return ours
    if _same_value(old, ours):
        return theirs
    return _CLASH


def _by_sha(manifest: Any) -> dict[str, Any] | None:
    if not isinstance(manifest, list):
        return None
    index: dict[str, Any] = {}
    for entry in manifest:
        sha = entry.get("sha256") if isinstance(entry, Mapping) else None
        if not isinstance(sha, str) or sha in index:
            return None
        index[sha] = entry
    return index


def _field_names(*records: Mapping[str, Any]) -> list[str]:
    """Content field names in a stable order: the server's first, then the others'."""
    names: dict[str, None] = {}
    for record in records:
        names.update((key, None) for key in record if key not in SERVER_MADE)
    return list(names)


def _content(record: Mapping[str, Any], names: list[str]) -> dict[str, Any]:
    return {name: record[name] for name in names if name in record}


def _same(name: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """A missing field and a null one are the same value."""
    return canonical_field(name, a.get(name)) == canonical_field(name, b.get(name))


def _same_value(a: Any, b: Any) -> bool:
    return canonical_field("", a) == canonical_field("", b)
