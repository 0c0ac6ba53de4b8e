from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fieldsvc.sync.merge import MergeResult, merge_fields, merge_media

A = {"name": "a.jpg", "sha256": "aa" * 32, "bytes": 10, "mime": "image/jpeg"}
B = {"name": "b.jpg", "sha256": "bb" * 32, "bytes": 20, "mime": "image/jpeg"}
C = {"name": "c.jpg", "sha256": "cc" * 32, "bytes": 30, "mime": "image/jpeg"}

BASE = {
    "code": "HN-0001",
    "parcel": "P-01",
    "collected_at": "2024-05-01T08:30:00+08:00",
    "location": {"lat": 28.123, "lon": 112.987, "accuracy_m": 5, "mock": False},
    "depth_top_cm": 0,
    "depth_bottom_cm": 20,
    "sample_type": "composite",
    "land_use_observed": "paddy",
    "note": "first note",
    "media": [A],
}


def edit(**changes):
    return {**BASE, **changes}


def loc(**changes):
    return {**BASE["location"], **changes}


@pytest.mark.parametrize(
    ("case", "base", "server", "incoming", "status", "soft", "hard"),
    [
        ("resend", BASE, BASE, BASE, "unchanged", (), ()),
        ("resend, numbers spelled differently", BASE, BASE, edit(depth_bottom_cm=20.0), "unchanged", (), ()),
        ("fresh edit", BASE, BASE, edit(note="second"), "applied", (), ()),
        ("stale edit that changed nothing", BASE, edit(note="server"), BASE, "unchanged", (), ()),
        ("both made the same change", BASE, edit(note="x"), edit(note="x"), "unchanged", (), ()),
        (
            "different fields",
            BASE,
            edit(note="server note"),
            edit(depth_bottom_cm=30),
            "merged",
            ("depth_bottom_cm", "note"),
            (),
        ),
        (
            "same field, different values",
            BASE,
            edit(note="server note"),
            edit(note="phone note"),
            "conflict",
            (),
            ("note",),
        ),
        (
            "one clash among merged changes",
            BASE,
            edit(note="server note", sample_type="profile"),
            edit(note="phone note", depth_bottom_cm=30),
            "conflict",
            ("depth_bottom_cm", "sample_type"),
            ("note",),
        ),
        (
            "location is one field: lat vs accuracy still clash",
            BASE,
            edit(location=loc(lat=28.2)),
            edit(location=loc(accuracy_m=3)),
            "conflict",
            (),
            ("location",),
        ),
        (
            "location and note on different sides merge",
            BASE,
            edit(location=loc(lat=28.2)),
            edit(note="phone note"),
            "merged",
            ("location", "note"),
            (),
        ),
        (
            "location raw spelling is not a change",
            BASE,
            edit(note="server note"),
            edit(location={**loc(), "raw": {"lat": "28,123"}}),
            "unchanged",
            (),
            (),
        ),
        (
            "a field the phone cleared",
            BASE,
            edit(note="server note"),
            edit(land_use_observed=None),
            "merged",
            ("land_use_observed", "note"),
            (),
        ),
        (
            "no base, different content",
            None,
            BASE,
            edit(note="phone", depth_top_cm=5),
            "conflict",
            (),
            ("depth_top_cm", "note"),
        ),
        ("no base, same content", None, BASE, dict(BASE), "unchanged", (), ()),
    ],
)
def test_merge_outcomes(case, base, server, incoming, status, soft, hard):
    result = merge_fields(base, server, incoming)
    assert (result.status, result.soft_fields, result.hard_fields) == (status, soft, hard), case


def test_applied_takes_the_incoming_content_whole():
    incoming = edit(note="second", depth_bottom_cm=25)
    assert merge_fields(BASE, BASE, incoming).merged == incoming


def test_unchanged_keeps_the_server_content():
    server = edit(note="server")
    assert merge_fields(BASE, server, BASE).merged == server


def test_merged_takes_each_sides_change():
    result = merge_fields(BASE, edit(note="server note"), edit(depth_bottom_cm=30))
    assert result.merged == edit(note="server note", depth_bottom_cm=30)
    assert result.provisional == {}


def test_conflict_keeps_the_server_value_provisionally_and_the_others_merged():
    server = edit(note="server note", sample_type="profile")
    incoming = edit(note="phone note", depth_bottom_cm=30)
    result = merge_fields(BASE, server, incoming)
    assert result.merged == edit(note="server note", sample_type="profile", depth_bottom_cm=30)
    assert result.provisional == {"note": "server note"}
    assert result.incoming_values == {"note": "phone note"}


def test_no_base_conflict_keeps_the_server_record_and_lists_every_difference():
    incoming = edit(note="phone", depth_top_cm=5)
    result = merge_fields(None, BASE, incoming)
    assert result.merged == BASE
    assert result.provisional == {"depth_top_cm": 0, "note": "first note"}
    assert result.incoming_values == {"depth_top_cm": 5, "note": "phone"}


@pytest.mark.parametrize(
    ("server_time", "phone_time"),
    [
        ("2024-05-01T09:00:00+08:00", "2030-01-01T00:00:00Z"),  # phone claims to be later
        ("2030-01-01T00:00:00Z", "1980-01-06T00:00:00Z"),  # server's copy claims to be later
    ],
)
def test_conflicts_are_never_decided_by_device_clocks(server_time, phone_time):
    server = edit(collected_at=server_time, note="server note")
    incoming = edit(collected_at=phone_time, note="phone note")
    result = merge_fields(BASE, server, incoming)
    assert result.status == "conflict"
    assert result.merged["note"] == "server note"
    assert set(result.hard_fields) == {"note", "collected_at"}
    assert result.merged["collected_at"] == server_time


def test_conflict_result_does_not_depend_on_argument_key_order():
    server = edit(note="server note", sample_type="profile")
    incoming = edit(note="phone note", depth_bottom_cm=30)
    reversed_incoming = dict(reversed(list(incoming.items())))
    assert merge_fields(BASE, server, incoming) == merge_fields(BASE, server, reversed_incoming)


def test_server_made_keys_are_ignored():
    server = {**BASE, "version": 4, "flags": ["low_accuracy"]}
    incoming = {**BASE, "version": 1}
    result = merge_fields(BASE, server, incoming)
    assert result.status == "unchanged"
    assert "version" not in result.merged and "flags" not in result.merged


def test_a_missing_field_equals_null():
    without_note = {k: v for k, v in BASE.items() if k != "note"}
    assert merge_fields(edit(note=None), edit(note=None), without_note).status == "unchanged"


# ------------------------------------------------------------------ media manifests


@pytest.mark.parametrize(
    ("case", "server_media", "incoming_media", "status", "media"),
    [
        ("both added different photos", [A, B], [A, C], "merged", [A, B, C]),
        ("phone removed one, server added one", [A, B], [], "merged", [B]),
        ("server removed one, phone added one", [], [A, C], "merged", [C]),
        ("both added the same photo", [A, B], [A, B], "unchanged", [A, B]),
        (
            "both renamed the same photo differently",
            [{**A, "name": "x.jpg"}],
            [{**A, "name": "y.jpg"}],
            "conflict",
            [{**A, "name": "x.jpg"}],
        ),
        (
            "server renamed it, phone added one",
            [{**A, "name": "x.jpg"}],
            [A, C],
            "merged",
            [{**A, "name": "x.jpg"}, C],
        ),
        ("server removed it, phone renamed it", [], [{**A, "name": "y.jpg"}, C], "conflict", []),
        ("same new photo, described differently", [A, B], [A, {**B, "name": "b2.jpg"}], "conflict", [A, B]),
    ],
)
def test_media_manifests_merge_as_sets_by_sha256(case, server_media, incoming_media, status, media):
    result = merge_fields(BASE, edit(media=server_media, note="server"), edit(media=incoming_media))
    assert result.status == status, case
    assert result.merged["media"] == media, case
    assert ("media" in result.hard_fields) is (status == "conflict"), case
    if status == "merged":
        assert "media" in result.soft_fields


def test_media_order_alone_is_not_a_change():
    result = merge_fields(BASE, edit(media=[A, B]), edit(media=[B, A]))
    assert result.status == "unchanged"


def test_media_without_a_base_is_not_unioned():
    result = merge_fields(None, edit(media=[A, B]), edit(media=[A, C]))
    assert result.status == "conflict" and result.hard_fields == ("media",)
    assert result.merged["media"] == [A, B]


@pytest.mark.parametrize(
    ("base", "server", "incoming"),
    [
        ([A], "not a list", [A, B]),
        ([A], [A, {"name": "no hash"}], [A, B]),
        ([A], [A, B, B], [A, C]),
    ],
)
def test_malformed_manifests_are_not_merged(base, server, incoming):
    assert merge_media(base, server, incoming) is None


# ------------------------------------------------------------------ properties

values = st.sampled_from([None, 0, 1, 1.0, Decimal("2.5"), "a", "b", {"lat": 1}, {"lat": 2}])
records = st.dictionaries(st.sampled_from(["note", "code", "depth_top_cm", "location"]), values, max_size=4)


@settings(max_examples=300, deadline=None)
@given(records, records, records)
def test_merge_properties(base, server, incoming):
    result = merge_fields(base, server, incoming)
    assert isinstance(result, MergeResult)
    if result.status == "unchanged":
        assert merge_fields(None, server, result.merged).status == "unchanged"
    if result.status == "conflict":
        assert result.hard_fields
        assert not set(result.hard_fields) & set(result.soft_fields)
        for name in result.hard_fields:  # provisional value is the server's
            assert (
                merge_fields(None, {name: server.get(name)}, {name: result.merged.get(name)}).status
                == "unchanged"
            )
    else:
        assert not result.hard_fields and not result.provisional
    # swapping the sides never turns a clash into a merge or back
    assert (merge_fields(base, incoming, server).status == "conflict") is (result.status == "conflict")
