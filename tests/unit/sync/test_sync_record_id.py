"""A pushed record's id: canonical UUID text, whatever spelling ``uuid.UUID`` accepts."""

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fieldsvc.sync.push import _record_id


@given(st.uuids(), st.sampled_from([str, lambda u: str(u).upper(), lambda u: f"{{{u}}}", lambda u: u.urn,
                                    lambda u: u.hex]))
def test_any_spelling_uuid_accepts_comes_out_canonical(value, spell):
    assert _record_id(spell(value)) == str(value)


@pytest.mark.parametrize("raw", [None, 7, "", "not-a-uuid", "1234", str(uuid.uuid4()) + "x" * 10,
                                 "g" * 8 + "-0000-0000-0000-" + "0" * 12, ["a"]])
def test_anything_else_is_no_id(raw):
    assert _record_id(raw) is None
