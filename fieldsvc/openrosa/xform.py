"""The soil-sample XForm (ODK XForms 1.0) built from data, and the OpenRosa form list. Pure.

Field names are a pushed sample's ``data`` names (DESIGN §4.3), so a submission maps onto a
sync record field by field. Choice lists come from the server's code lists (passed in), labels
are in English and Chinese (itext). The version is derived from the form's content, so a
changed code list gives a new version and a new ``md5:`` hash, and Collect offers the update.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence
from xml.sax.saxutils import escape, quoteattr

FORM_ID = "fieldsvc_soil_sample"
FORM_REVISION = "2"  # bump when the form's structure changes by hand
XFORMS_LIST_NS = "http://openrosa.org/xforms/xformsList"
MANIFEST_NS = "http://openrosa.org/xforms/xformsManifest"
RESPONSE_NS = "http://openrosa.org/http/response"
PARCELS_CSV = "parcels.csv"
EXTRA_GROUP = "extra"

LANGUAGES = ("English", "中文")
LABELS: dict[str, tuple[str, str]] = {
    "title": ("Soil sample", "土壤样品"),
    "code": ("Bag barcode", "样品袋条码"),
    "parcel_pick": ("Parcel (from the list or the map)", "地块（从列表或地图中选择）"),
    "parcel_other": ("Parcel code (not in the list)", "地块编号（列表中没有时填写）"),
    "location": ("Location (GPS)", "采样位置 (GPS)"),
    "depth_top_cm": ("Depth from (cm)", "采样深度上限 (cm)"),
    "depth_bottom_cm": ("Depth to (cm)", "采样深度下限 (cm)"),
    "sample_type": ("Sample type", "样品类型"),
    "land_use_observed": ("Land use seen", "现场土地利用"),
    "note": ("Notes", "备注"),
    "photo1": ("Photo 1", "照片 1"),
    "photo2": ("Photo 2", "照片 2"),
    "photo3": ("Photo 3", "照片 3"),
    "extra": ("More questions", "补充问题"),
}
# Constraint messages (zh/en): what the server would refuse at upload, said at entry.
HINTS: dict[str, tuple[str, str]] = {
    "code_hint": ("Letters, digits and . _ / - only, starting with a letter or digit; at most 64 "
                  "characters; no spaces inside.",
                  "只能用字母、数字和 . _ / -，以字母或数字开头，最多 64 个字符，中间不能有空格。"),
    "parcel_hint": ("A parcel code: at most 64 characters, no spaces.", "地块编号：最多 64 个字符，不能有空格。"),
    "depth_top_hint": ("0 to {max} cm.", "0–{max} cm。"),
    "depth_hint": ("0 to {max} cm; the bottom deeper than the top.", "0–{max} cm，下限须深于上限。"),
}
CHOICE_LABELS: dict[str, tuple[str, str]] = {
    "composite": ("Composite", "混合样"), "single_point": ("Single point", "单点样"),
    "topsoil": ("Topsoil", "表层土"), "subsoil": ("Subsoil", "底层土"), "profile": ("Profile", "剖面样"),
    "sediment": ("Sediment", "底泥"),
    "dryland": ("Dryland", "旱地"), "paddy": ("Paddy", "水田"), "vegetable": ("Vegetable", "菜地"),
    "orchard": ("Orchard", "果园"), "tea": ("Tea", "茶园"), "grassland": ("Grassland", "草地"),
    "paddy_dryland_rotation": ("Paddy–dryland rotation", "水旱轮作"),
}
# The server's bag-code rule (``samples.validation``: NFKC, strip, upper, ``[A-Z0-9][A-Z0-9._/-]*``,
# at most 64) as a Java regex; full-width letters, digits and . _ / - (Chinese keyboards) are
# accepted as the server accepts them (NFKC makes them ASCII), as are spaces around the code.
_WS = "\\s\u3000"
_ALNUM = "A-Za-z0-9\uff21-\uff3a\uff41-\uff5a\uff10-\uff19"
CODE_REGEX = f"^[{_WS}]*[{_ALNUM}][{_ALNUM}._/\uff0e\uff3f\uff0f\uff0d-]*[{_WS}]*$"
PARCEL_REGEX = f"^[{_WS}]*[^{_WS}]+[{_WS}]*$"
# Extension question types (XLSForm type → XForms bind type, body element)
EXTENSION_TYPES: dict[str, tuple[str, str]] = {
    "text": ("string", "input"), "integer": ("int", "input"), "decimal": ("decimal", "input"),
    "select_one": ("string", "select1"), "select_multiple": ("string", "select"), "date": ("date", "input"),
    "image": ("binary", "upload"), "geopoint": ("geopoint", "input"),
}


@dataclass(frozen=True)
class Form:
    form_id: str
    name: str
    version: str
    xml: str

    @property
    def md5(self) -> str:
        return "md5:" + hashlib.md5(self.xml.encode("utf-8"), usedforsecurity=False).hexdigest()


def build_form(sample_types: Sequence[str], land_uses: Sequence[str], *, depth_max_cm: float = 300,
               form_id: str = FORM_ID, extensions: Sequence[Mapping[str, Any]] = (),
               extension_version: int | None = None) -> Form:
    """The XForm for ``sample_types``/``land_uses`` (and the uploaded ``extensions`` questions, under
    the ``extra`` group); its version follows its content."""
    def render(version: str) -> str:
        return _xform(form_id, version, sample_types, land_uses, depth_max_cm, extensions)

    digest = hashlib.sha256(render("").encode()).hexdigest()[:10]
    ext = f".x{extension_version}" if extension_version else ""
    version = f"{FORM_REVISION}{ext}.{digest}"
    return Form(form_id, LABELS["title"][0], version, render(version))


def _label(key: str) -> str:
    return f"<label ref=\"jr:itext('{key}')\"/>"


def _texts(sample_types: Sequence[str], land_uses: Sequence[str], depth_max_cm: float,
           extensions: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    texts = {f"/data/{key}:label": value for key, value in LABELS.items() if key != "extra"}
    texts["/data/extra:label"] = LABELS["extra"]
    for key, (en, zh) in HINTS.items():
        texts[key] = (en.format(max=f"{depth_max_cm:g}"), zh.format(max=f"{depth_max_cm:g}"))
    for list_name, codes in (("sample_type", sample_types), ("land_use_observed", land_uses)):
        for code in codes:
            texts[f"/data/{list_name}/{code}:label"] = CHOICE_LABELS.get(code, (code, code))
    for q in extensions:
        path = f"/data/{EXTRA_GROUP}/{q['name']}"
        texts[f"{path}:label"] = (q["label_en"], q["label_zh"])
        if q.get("hint_en") or q.get("hint_zh"):
            texts[f"{path}:hint"] = (q.get("hint_en") or q.get("hint_zh"), q.get("hint_zh") or q.get("hint_en"))
        for choice in q.get("choices") or ():
            texts[f"{path}/{choice['name']}:label"] = (choice["label_en"], choice["label_zh"])
    return texts


def _itext(texts: Mapping[str, tuple[str, str]]) -> str:
    out = ["<itext>"]
    for index, lang in enumerate(LANGUAGES):
        default = ' default="true()"' if index == 0 else ""
        out.append(f"<translation lang={quoteattr(lang)}{default}>")
        for key, pair in texts.items():
            out.append(f"<text id={quoteattr(key)}><value>{escape(pair[index])}</value></text>")
        out.append("</translation>")
    out.append("</itext>")
    return "".join(out)


def _select(name: str, codes: Iterable[str], path: str = "/data", tag: str = "select1", extra: str = "") -> str:
    items = "".join(f"<item>{_label(f'{path}/{name}/{code}:label')}<value>{escape(code)}</value></item>"
                    for code in codes)
    return f"<{tag} ref=\"{path}/{name}\"{extra}>{_label(f'{path}/{name}:label')}{items}</{tag}>"


def _msg(key: str) -> str:
    return f"jr:constraintMsg=\"jr:itext('{key}')\""


def _extension_parts(extensions: Sequence[Mapping[str, Any]]) -> tuple[str, list[str], str]:
    """(instance children, binds, body group) for the uploaded questions."""
    if not extensions:
        return "", [], ""
    path = f"/data/{EXTRA_GROUP}"
    nodes, binds, body = [], [], []
    for q in extensions:
        name, kind = q["name"], q["type"]
        bind_type, element = EXTENSION_TYPES[kind]
        nodes.append(f"<{name}/>")
        attrs = f' type="{bind_type}"' + (' required="true()"' if q.get("required") else "")
        binds.append(f'<bind nodeset="{path}/{name}"{attrs}/>')
        hint = f"<hint ref=\"jr:itext('{path}/{name}:hint')\"/>" if q.get("hint_en") or q.get("hint_zh") else ""
        if element in ("select1", "select"):
            codes = [c["name"] for c in q.get("choices") or ()]
            body.append(_select(name, codes, path, element).replace("</" + element + ">", "", 1)
                        .replace(_label(f"{path}/{name}:label"), _label(f"{path}/{name}:label") + hint, 1)
                        + f"</{element}>")
        elif element == "upload":
            body.append(f'<upload ref="{path}/{name}" mediatype="image/*">{_label(f"{path}/{name}:label")}'
                        f"{hint}</upload>")
        else:
            body.append(f'<input ref="{path}/{name}">{_label(f"{path}/{name}:label")}{hint}</input>')
    group = f'<group ref="{path}">{_label(f"{path}:label")}{"".join(body)}</group>'
    return f"<{EXTRA_GROUP}>{''.join(nodes)}</{EXTRA_GROUP}>", binds, group


def _xform(form_id: str, version: str, sample_types: Sequence[str], land_uses: Sequence[str],
           depth_max_cm: float, extensions: Sequence[Mapping[str, Any]] = ()) -> str:
    top = "/data/depth_top_cm"
    most = f"{depth_max_cm:g}"
    pick, other = "/data/parcel_pick", "/data/parcel_other"
    code_rule = (f"regex(., {_xpath_string(CODE_REGEX)}) and string-length(normalize-space(.)) &lt;= 64")
    parcel_rule = f"regex(., {_xpath_string(PARCEL_REGEX)}) and string-length(normalize-space(.)) &lt;= 64"
    extra_nodes, extra_binds, extra_body = _extension_parts(extensions)
    binds = [
        f'<bind nodeset="/data/code" type="barcode" required="true()" constraint="{code_rule}" {_msg("code_hint")}/>',
        f'<bind nodeset="{pick}" type="string"/>',
        f'<bind nodeset="{other}" type="string" relevant="{pick} = \'\'" required="true()" '
        f'constraint="{parcel_rule}" {_msg("parcel_hint")}/>',
        f'<bind nodeset="/data/parcel" type="string" readonly="true()" '
        f'calculate="if({pick} != \'\', {pick}, normalize-space({other}))"/>',
        '<bind nodeset="/data/location" type="geopoint" required="true()"/>',
        f'<bind nodeset="{top}" type="decimal" required="true()" '
        f'constraint=". &gt;= 0 and . &lt;= {most}" {_msg("depth_top_hint")}/>',
        f'<bind nodeset="/data/depth_bottom_cm" type="decimal" required="true()" '
        f'constraint=". &gt; {top} and . &gt;= 0 and . &lt;= {most}" {_msg("depth_hint")}/>',
        '<bind nodeset="/data/sample_type" type="string" required="true()"/>',
        '<bind nodeset="/data/land_use_observed" type="string"/>',
        '<bind nodeset="/data/note" type="string"/>',
        *(f'<bind nodeset="/data/photo{i}" type="binary"/>' for i in (1, 2, 3)),
        *extra_binds,
        '<bind nodeset="/data/collected_at" type="dateTime" jr:preload="timestamp" jr:preloadParams="start"/>',
        '<bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>',
    ]
    instance = (f"<data id={quoteattr(form_id)} version={quoteattr(version)}>"
                "<code/><parcel_pick/><parcel_other/><parcel/><location/><depth_top_cm/><depth_bottom_cm/>"
                "<sample_type/><land_use_observed/><note/><photo1/><photo2/><photo3/>"
                f"{extra_nodes}<collected_at/><meta><instanceID/></meta></data>")
    body = [
        f'<input ref="/data/code">{_label("/data/code:label")}</input>',
        f'<select1 ref="{pick}" appearance="map">{_label(f"{pick}:label")}'
        f'<itemset nodeset="instance(\'parcels\')/root/item"><value ref="name"/><label ref="label"/></itemset>'
        "</select1>",
        f'<input ref="{other}">{_label(f"{other}:label")}</input>',
        f'<input ref="/data/location">{_label("/data/location:label")}</input>',
        f'<input ref="{top}">{_label("/data/depth_top_cm:label")}</input>',
        f'<input ref="/data/depth_bottom_cm">{_label("/data/depth_bottom_cm:label")}</input>',
        _select("sample_type", sample_types),
        _select("land_use_observed", land_uses),
        f'<input ref="/data/note" appearance="multiline">{_label("/data/note:label")}</input>',
        *(f'<upload ref="/data/photo{i}" mediatype="image/*">{_label(f"/data/photo{i}:label")}</upload>'
          for i in (1, 2, 3)),
        extra_body,
    ]
    texts = _texts(sample_types, land_uses, depth_max_cm, extensions)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml" '
        'xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms" '
        'xmlns:odk="http://www.opendatakit.org/xforms">'
        f"<h:head><h:title>{escape(LABELS['title'][0])}</h:title>"
        f'<model odk:xforms-version="1.0.0">{_itext(texts)}'
        f"<instance>{instance}</instance>"
        f'<instance id="parcels" src="jr://file-csv/{PARCELS_CSV}"/>'
        f"{''.join(binds)}</model></h:head>"
        f"<h:body>{''.join(body)}</h:body></h:html>\n"
    )


def _xpath_string(text: str) -> str:
    """An XPath string literal inside a double-quoted XML attribute."""
    quoted = "'" + text + "'" if "'" not in text else '"' + text + '"'
    return escape(quoted, {'"': "&quot;"})


def form_list_xml(forms: Sequence[Form], download_url: Mapping[str, str],
                  manifest_url: Mapping[str, str] | None = None) -> str:
    """``GET /formList``: the OpenRosa xforms list (with each form's manifest URL)."""
    manifests = manifest_url or {}
    items = "".join(
        "<xform>"
        f"<formID>{escape(f.form_id)}</formID><name>{escape(f.name)}</name>"
        f"<version>{escape(f.version)}</version><hash>{escape(f.md5)}</hash>"
        f"<descriptionText>{escape(LABELS['title'][1])} / {escape(LABELS['title'][0])}</descriptionText>"
        f"<downloadUrl>{escape(download_url[f.form_id])}</downloadUrl>"
        + (f"<manifestUrl>{escape(manifests[f.form_id])}</manifestUrl>" if f.form_id in manifests else "")
        + "</xform>" for f in forms)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<xforms xmlns="{XFORMS_LIST_NS}">{items}</xforms>\n'


def manifest_xml(files: Sequence[tuple[str, str, str]]) -> str:
    """A form's manifest: ``(filename, md5 hash, download URL)`` per media file."""
    items = "".join(f"<mediaFile><filename>{escape(name)}</filename><hash>{escape(md5)}</hash>"
                    f"<downloadUrl>{escape(url)}</downloadUrl></mediaFile>" for name, md5, url in files)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<manifest xmlns="{MANIFEST_NS}">{items}</manifest>\n'


def response_xml(message: str, nature: str = "") -> str:
    """An OpenRosa response body (``<OpenRosaResponse>`` with one message)."""
    attr = f" nature={quoteattr(nature)}" if nature else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<OpenRosaResponse xmlns="{RESPONSE_NS}">'
            f"<message{attr}>{escape(message)}</message></OpenRosaResponse>\n")
