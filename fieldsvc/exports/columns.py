"""What each export carries: its columns with Chinese and English headers, units and kinds.

Pure data (no Flask, no database). ``kind`` decides how a writer stores a cell: ``text``,
``number`` (a real number in XLSX and GeoPackage, exact text in CSV), ``int``, ``time`` (a stored
UTC time; spreadsheets get it in the county's zone, to the minute, machine formats as RFC 3339),
``list`` (joined with ``;``).
"""

from __future__ import annotations

from dataclasses import dataclass

RESOURCES = ("samples", "results", "grades", "certificates")
FORMATS = ("xlsx", "csv", "geojson", "gpkg")
ZONE_NAME = "Asia/Shanghai"


@dataclass(frozen=True)
class Column:
    key: str
    zh: str
    en: str
    kind: str = "text"
    unit: str | None = None

    def header(self, lang: str) -> str:
        name = self.zh if lang == "zh" else self.en
        if self.kind == "time":
            return f"{name}（北京时间）" if lang == "zh" else f"{name} (China time)"
        return f"{name} ({self.unit})" if self.unit else name


COLUMNS: dict[str, tuple[Column, ...]] = {
    "samples": (
        Column("id", "样品ID", "Sample id"),
        Column("code", "样品袋编号", "Bag code"),
        Column("parcel", "地块", "Parcel"),
        Column("village", "行政村", "Village"),
        Column("farm_park", "农业园区", "Farm park"),
        Column("county", "县", "County"),
        Column("state", "状态", "State"),
        Column("flags", "标记", "Flags", "list"),
        Column("collected_at", "采样时间", "Collected", "time"),
        Column("received_at", "接收时间", "Received", "time"),
        Column("lat", "纬度", "Latitude", "number", "°"),
        Column("lon", "经度", "Longitude", "number", "°"),
        Column("accuracy_m", "定位精度", "GPS accuracy", "number", "m"),
        Column("depth_top_cm", "采样深度上限", "Depth top", "number", "cm"),
        Column("depth_bottom_cm", "采样深度下限", "Depth bottom", "number", "cm"),
        Column("sample_type", "样品类型", "Sample type"),
        Column("land_use_observed", "现场土地利用", "Land use observed"),
        Column("version", "版本", "Version", "int"),
    ),
    "results": (
        Column("id", "结果ID", "Result id"),
        Column("sample_id", "样品ID", "Sample id"),
        Column("sample_code", "样品袋编号", "Bag code"),
        Column("parcel", "地块", "Parcel"),
        Column("analyte", "检测项目", "Analyte"),
        Column("qualifier", "限定符", "Qualifier"),
        Column("value", "检测值", "Value", "number"),
        Column("detection_limit", "检出限", "Detection limit", "number"),
        Column("unit", "单位", "Unit"),
        Column("raw_value", "原始值", "Value as sent"),
        Column("raw_unit", "原始单位", "Unit as sent"),
        Column("method", "检测方法", "Method"),
        Column("status", "审核状态", "Review status"),
        Column("version", "版本", "Version", "int"),
        Column("import_id", "导入批次", "Import", "int"),
        Column("created_at", "导入时间", "Imported", "time"),
    ),
    "grades": (
        Column("parcel", "地块", "Parcel"),
        Column("village", "行政村", "Village"),
        Column("farm_park", "农业园区", "Farm park"),
        Column("county", "县", "County"),
        Column("land_use", "土地利用", "Land use"),
        Column("area_m2", "面积", "Area", "number", "m²"),
        Column("rule_pack", "规则包", "Rule pack"),
        Column("verdict", "结论", "Verdict"),
        Column("grade", "等级", "Grade"),
        Column("limiting", "限制因子", "Limiting", "list"),
        Column("computed_at", "评价时间", "Graded", "time"),
    ),
    "certificates": (
        Column("code", "证书编号", "Certificate"),
        Column("subject_type", "对象类型", "Subject type"),
        Column("subject_code", "对象编号", "Subject"),
        Column("county", "县", "County"),
        Column("status", "状态", "Status"),
        Column("reason", "原因", "Reason"),
        Column("issued_at", "签发时间", "Issued", "time"),
        Column("valid_until", "有效期至", "Valid until", "time"),
        Column("issued_by", "签发人", "Issued by"),
        Column("replaced_by", "取代它的证书", "Replaced by"),
    ),
}

# The geometry each resource's features carry in GeoJSON and GeoPackage.
GEOMETRY = {"samples": "Point", "results": "Point", "grades": "MultiPolygon", "certificates": "MultiPolygon"}
