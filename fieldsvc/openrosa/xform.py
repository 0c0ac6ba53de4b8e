"""The soil-sample XForm (ODK XForms 1.0) built from data, and the OpenRosa form list. Pure.

Field names are a pushed sample's ``data`` names (DESIGN §4.3), so a submission maps onto a
sync record field by field. Choice lists come from the server's code lists (passed in), labels
are in English and Chinese (itext). The version is derived from the form's content, so a
changed code list gives a new version and a new ``md5:`` hash, and Collect offers the update.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence
from xml.sax.saxutils import escape, quoteattr

FORM_ID = "fieldsvc_soil_sample"
FORM_REVISION = "1"  # bump when the form's structure changes by hand
XFORMS_LIST_NS = "http://openrosa.org/xforms/xformsList"
RESPONSE_NS = "http://openrosa.org/http/response"

LANGUAGES = ("English", "中文")
LABELS: dict[str, tuple[str, str]] = {
    "title": ("Soil sample", "土壤样品"),
    "code": ("Bag barcode", "样品袋条码"),
    "parcel": ("Parcel code", "地块编号"),
    "location": ("Location (GPS)", "采样位置 (GPS)"),
    "depth_top_cm": ("Depth from (cm)", "采样深度上限 (cm)"),
    "depth_bottom_cm": ("Depth to (cm)", "采样深度下限 (cm)"),
    "sample_type": ("Sample type", "样品类型"),
    "land_use_observed": ("Land use seen", "现场土地利用"),
    "note": ("Notes", "备注"),
    "photo1": ("Photo 1", "照片 1"),
    "photo2": ("Photo 2", "照片 2"),
    "photo3": ("Photo 3", "照片 3"),
    "depth_hint": ("0 to 300 cm; the bottom deeper than the top", "0–300 cm,下限须深于上限"),
}
CHOICE_LABELS: dict[str, tuple[str, str]] = {
    "composite": ("Composite", "混合样"), "single_point": ("Single point", "单点样"),
    "topsoil": ("Topsoil", "表层土"), "subsoil": ("Subsoil", "底层土"), "profile": ("Profile", "剖面样"),
    "sediment": ("Sediment", "底泥"),
    "dryland": ("Dryland", "旱地"), "paddy": ("Paddy", "水田"), "vegetable": ("Vegetable", "菜地"),
    "orchard": ("Orchard", "果园"), "tea": ("Tea", "茶园"), "grassland": ("Grassland", "草地"),
    "paddy_dryland_rotation": ("Paddy–dryland rotation", "水旱轮作"),
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
               form_id: str = FORM_ID) -> Form:
    """The XForm for ``sample_types``/``land_uses``; its version follows its content."""
    draft = _xform(form_id, "", sample_types, land_uses, depth_max_cm)
    version = f"{FORM_REVISION}.{hashlib.sha256(draft.encode()).hexdigest()[:10]}"
    return Form(form_id, LABELS["title"][0], version, _xform(form_id, version, sample_types, land_uses,
                                                              depth_max_cm))


def _label(key: str) -> str:
    return f"<label ref=\"jr:itext('{key}')\"/>"


def _itext(sample_types: Sequence[str], land_uses: Sequence[str]) -> str:
    out = ["<itext>"]
    for index, lang in enumerate(LANGUAGES):
        default = ' default="true()"' if index == 0 else ""
        out.append(f"<translation lang={quoteattr(lang)}{default}>")
        for key, texts in LABELS.items():
            out.append(f"<text id={quoteattr('/data/' + key + ':label')}><value>{escape(texts[index])}</value></text>")
        for list_name, codes in (("sample_type", sample_types), ("land_use_observed", land_uses)):
            for code in codes:
                text = CHOICE_LABELS.get(code, (code, code))[index]
                out.append(f"<text id={quoteattr(f'/data/{list_name}/{code}:label')}>"
                           f"<value>{escape(text)}</value></text>")
        out.append("</translation>")
    out.append("</itext>")
    return "".join(out)


def _select(name: str, codes: Iterable[str]) -> str:
    items = "".join(f"<item>{_label(f'/data/{name}/{code}:label')}<value>{escape(code)}</value></item>"
                    for code in codes)
    return f"<select1 ref=\"/data/{name}\">{_label(f'/data/{name}:label')}{items}</select1>"


def _xform(form_id: str, version: str, sample_types: Sequence[str], land_uses: Sequence[str],
           depth_max_cm: float) -> str:
    top = "/data/depth_top_cm"
    binds = [
        '<bind nodeset="/data/code" type="barcode" required="true()"/>',
        '<bind nodeset="/data/parcel" type="string" required="true()"/>',
        '<bind nodeset="/data/location" type="geopoint" required="true()"/>',
        f'<bind nodeset="{top}" type="decimal" required="true()" '
        f'constraint=". &gt;= 0 and . &lt;= {depth_max_cm:g}"/>',
        f'<bind nodeset="/data/depth_bottom_cm" type="decimal" required="true()" '
        f'constraint=". &gt; {top} and . &lt;= {depth_max_cm:g}" '
        'jr:constraintMsg="jr:itext(\'/data/depth_hint:label\')"/>',
        '<bind nodeset="/data/sample_type" type="string" required="true()"/>',
        '<bind nodeset="/data/land_use_observed" type="string"/>',
        '<bind nodeset="/data/note" type="string"/>',
        *(f'<bind nodeset="/data/photo{i}" type="binary"/>' for i in (1, 2, 3)),
        '<bind nodeset="/data/collected_at" type="dateTime" jr:preload="timestamp" jr:preloadParams="start"/>',
        '<bind nodeset="/data/meta/instanceID" type="string" readonly="true()" jr:preload="uid"/>',
    ]
    instance = (f"<data id={quoteattr(form_id)} version={quoteattr(version)}>"
                "<code/><parcel/><location/><depth_top_cm/><depth_bottom_cm/><sample_type/><land_use_observed/>"
                "<note/><photo1/><photo2/><photo3/><collected_at/><meta><instanceID/></meta></data>")
    body = [
        f'<input ref="/data/code">{_label("/data/code:label")}</input>',
        f'<input ref="/data/parcel">{_label("/data/parcel:label")}</input>',
        f'<input ref="/data/location">{_label("/data/location:label")}</input>',
        f'<input ref="{top}">{_label("/data/depth_top_cm:label")}</input>',
        f'<input ref="/data/depth_bottom_cm">{_label("/data/depth_bottom_cm:label")}</input>',
        _select("sample_type", sample_types),
        _select("land_use_observed", land_uses),
        f'<input ref="/data/note" appearance="multiline">{_label("/data/note:label")}</input>',
        *(f'<upload ref="/data/photo{i}" mediatype="image/*">{_label(f"/data/photo{i}:label")}</upload>'
          for i in (1, 2, 3)),
    ]
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml" '
        'xmlns:jr="http://openrosa.org/javarosa" xmlns:orx="http://openrosa.org/xforms" '
        'xmlns:odk="http://www.opendatakit.org/xforms">'
        f"<h:head><h:title>{escape(LABELS['title'][0])}</h:title>"
        f'<model odk:xforms-version="1.0.0">{_itext(sample_types, land_uses)}'
        f"<instance>{instance}</instance>{''.join(binds)}</model></h:head>"
        f"<h:body>{''.join(body)}</h:body></h:html>\n"
    )


def form_list_xml(forms: Sequence[Form], download_url: Mapping[str, str]) -> str:
    """``GET /formList``: the OpenRosa xforms list."""
    items = "".join(
        "<xform>"
        f"<formID>{escape(f.form_id)}</formID><name>{escape(f.name)}</name>"
        f"<version>{escape(f.version)}</version><hash>{escape(f.md5)}</hash>"
        f"<descriptionText>{escape(LABELS['title'][1])} / {escape(LABELS['title'][0])}</descriptionText>"
        f"<downloadUrl>{escape(download_url[f.form_id])}</downloadUrl>"
        "</xform>" for f in forms)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<xforms xmlns="{XFORMS_LIST_NS}">{items}</xforms>\n'


def response_xml(message: str, nature: str = "") -> str:
    """An OpenRosa response body (``<OpenRosaResponse>`` with one message)."""
    attr = f" nature={quoteattr(nature)}" if nature else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<OpenRosaResponse xmlns="{RESPONSE_NS}">'
            f"<message{attr}>{escape(message)}</message></OpenRosaResponse>\n")
