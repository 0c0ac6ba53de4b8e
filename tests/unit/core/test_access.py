"""``fieldsvc.access``: the predicate and its query form give the same answer for every kind of account."""

from __future__ import annotations

import pytest
from sqlalchemy import Column, MetaData, String, Table, create_engine, insert, select

from fieldsvc import access
from fieldsvc.auth.principal import Actor

COUNTIES = ["360129", "360130", None]
ACTORS = [
    Actor(1, "admin", "admin"),
    Actor(2, "official-a", "official", "360129"),
    Actor(3, "official-province", "official"),
    Actor(4, "lab-b", "lab", "360130"),
    Actor(5, "lab-province", "lab"),
    Actor(6, "sampler", "sampler", "360129"),
]


@pytest.fixture(scope="module")
def rows():
    engine = create_engine("sqlite://")
    table = Table("things", MetaData(), Column("county_code", String, nullable=True))
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), [{"county_code": c} for c in COUNTIES])
    return engine, table


@pytest.mark.parametrize("actor", ACTORS, ids=lambda a: a.username)
def test_predicate_and_filter_agree(rows, actor):
    engine, table = rows
    with engine.connect() as conn:
        seen = set(conn.scalars(select(table.c.county_code).where(access.county_filter(actor, table.c.county_code))))
    assert seen == {c for c in COUNTIES if access.may_see_county(actor, c)}


def test_an_account_without_a_county_is_province_wide():
    for actor in (Actor(3, "o", "official"), Actor(5, "l", "lab")):
        assert access.province_wide(actor)
        assert all(access.may_see_county(actor, c) for c in COUNTIES)
        assert all(access.may_see_record(actor, c) for c in COUNTIES)


def test_a_county_account_sees_its_county_only_and_no_countyless_row():
    official = Actor(2, "o", "official", "360129")
    assert [access.may_see_county(official, c) for c in COUNTIES] == [True, False, False]
    assert access.covers(None, "360130") and access.covers("360129", "360129") and not access.covers("360129", None)


def test_samplers_read_no_county_records():
    sampler = Actor(6, "s", "sampler", "360129")
    assert access.assignment_bound(sampler) and not access.may_see_record(sampler, "360129")
    assert access.may_see_county(sampler, "360129")  # (its parcels are still bounded by the assignment)
