"""The public page's words in Chinese and English, and picking one (no Flask import).

A small dict is enough for one page; Babel would add catalogues and a build step for
about thirty strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..grading.basis import Basis, area_basis_text, basis_text

SUPPORTED = ("zh", "en")
DEFAULT = "zh"
MAX_HEADER = 512

STRINGS: dict[str, dict[str, str]] = {
    "zh": {
        "html_lang": "zh-CN",
        "brand": "绿色食品产地土壤证书验证",
        "title": "证书验证",
        "valid": "真实有效",
        "valid_detail": "此证书由本机构签发，目前有效。",
        "revoked": "已撤销",
        "revoked_detail": "此证书真实，但已被撤销，不再有效。",
        "expired": "已过期",
        "expired_detail": "此证书真实，但已超过有效期。",
        "superseded": "已被新证书取代",
        "superseded_detail": "此证书真实，但已被新证书取代，请以新证书为准。",
        "unknown": "无法验证",
        "unknown_detail": "没有找到这个编号的证书。请核对标签上的编号；此标签可能不是真品。",
        "reason": "原因",
        "revoked_at": "撤销日期",
        "see_replacement": "查看取代它的新证书",
        "subject": "认证对象",
        "place": "所在地",
        "grade": "土壤质量等级",
        "tested_on": "土壤检测日期",
        "standard": "评价依据",
        "valid_until": "有效期至",
        "issued": "签发日期",
        "issuer": "签发机构",
        "land_label": "土地标识",
        "serial_label": "本标签序号",
        "serial_checks": "本标签首次查验于 %s，共查验 %d 次。",
        "serial_too_many_checks": "本标签被查验的次数远多于一枚真标签，可能是复制品，请谨慎购买。",
        "serial_too_many_days": "本标签在过多的不同日期被查验，一枚真标签不会如此，可能是复制品。",
        "labelled": "标识对象",
        "outline": "所在村（园区）范围示意图，不含坐标",
        "not_graded": "尚无评价结论。",
        "conclusions": "各项标准结论",
        "elements": "元素含量与限值",
        "limit": "限值",
        "threshold": "富硒下限",
        "basis": "依据",
        "since": "此结论自",
        "as_of": "截至",
        "history": "历次结论",
        "area_worst": "村（园区）内各元素取最不利地块的检测值。",
        "co_issuer": "联合签发",
        "seal": "签发机构印章",
        "code": "证书编号",
        "unverified": "注意：所用评价规则的限值尚未与官方标准文本核对。",
        "footer": "本页只显示村级地点，不含坐标和个人信息。",
        "switch": "English",
        "parcel": "地块",
        "farm_park": "农业园区",
        "village": "行政村",
        "error_429": "请求过于频繁",
        "error_429_detail": "请稍候再试。",
        "error": "出错了",
        "error_detail": "暂时无法显示此页面。",
    },
    "en": {
        "html_lang": "en",
        "brand": "Green-food soil certificate check",
        "title": "Certificate check",
        "valid": "Genuine and valid",
        "valid_detail": "This certificate was issued by us and is valid today.",
        "revoked": "Revoked",
        "revoked_detail": "This certificate is genuine but has been revoked; it is no longer valid.",
        "expired": "Expired",
        "expired_detail": "This certificate is genuine but its validity period has ended.",
        "superseded": "Superseded",
        "superseded_detail": "This certificate is genuine but a newer certificate replaces it.",
        "unknown": "Cannot verify",
        "unknown_detail": "No certificate has this code. Check the code on the label; this label may not be genuine.",
        "reason": "Reason",
        "revoked_at": "Revoked on",
        "see_replacement": "See the replacing certificate",
        "subject": "Certified",
        "place": "Location",
        "grade": "Soil grade",
        "tested_on": "Soil tested on",
        "standard": "Standard",
        "valid_until": "Valid until",
        "issued": "Issued on",
        "issuer": "Issued by",
        "land_label": "Land label",
        "serial_label": "This label's serial",
        "serial_checks": "This label was first checked on %s and has been checked %d times.",
        "serial_too_many_checks": "This label has been checked far more often than one genuine label would be: "
                                  "it may be a copy.",
        "serial_too_many_days": "This label has been checked on more different days than one genuine label "
                                "would be: it may be a copy.",
        "labelled": "Labelled land",
        "outline": "Outline of the village or park, without coordinates",
        "not_graded": "No conclusion yet.",
        "conclusions": "Conclusions by standard",
        "elements": "Elements against their limits",
        "limit": "limit",
        "threshold": "Se-rich threshold",
        "basis": "basis",
        "since": "This conclusion since",
        "as_of": "As of",
        "history": "Earlier conclusions",
        "area_worst": "For a village or park each element shows its least favourable tested parcel.",
        "co_issuer": "Co-issuer",
        "seal": "Seal of the issuing institute",
        "code": "Certificate no.",
        "unverified": "Note: the values of this standard have not yet been verified against the official text.",
        "footer": "This page shows the place at village level only: no coordinates, no personal data.",
        "switch": "中文",
        "parcel": "Parcel",
        "farm_park": "Farm park",
        "village": "Village",
        "error_429": "Too many requests",
        "error_429_detail": "Please wait a moment and try again.",
        "error": "Something went wrong",
        "error_detail": "This page cannot be shown right now.",
    },
}

GRADES = {
    "zh": {"clean": "清洁", "still_clean": "尚清洁", "polluted": "污染", "A": "A 级", "B": "B 级", "C": "C 级",
           "priority_protection": "优先保护类", "safe_use": "安全利用类", "strict_control": "严格管控类",
           "I": "Ⅰ级（高）", "II": "Ⅱ级（中）", "III": "Ⅲ级（低）", "green_se_rich": "绿色富硒土地",
           "se_rich": "富硒土地", "not_assessed": "未评价"},
    "en": {"clean": "Clean", "still_clean": "Still clean", "polluted": "Polluted", "A": "Grade A", "B": "Grade B",
           "C": "Grade C", "priority_protection": "Priority protection", "safe_use": "Safe use",
           "strict_control": "Strict control", "I": "Class I (high)", "II": "Class II (medium)",
           "III": "Class III (low)", "green_se_rich": "Green selenium-rich land", "se_rich": "Selenium-rich land",
           "not_assessed": "Not assessed"},
}

# Land labels: what each standard's conclusion is about, the analytes by name, the basis of a value.
STANDARD_TOPICS = {
    "zh": {"green_food_soil": "绿色食品产地环境质量", "gb15618_2018": "农用地土壤污染风险",
           "nyt391_fertility": "土壤肥力", "dzt0380_se_rich": "天然富硒土地"},
    "en": {"green_food_soil": "Green-food production soil", "gb15618_2018": "Farmland soil contamination risk",
           "nyt391_fertility": "Soil fertility", "dzt0380_se_rich": "Natural selenium-rich land"},
}
ANALYTES = {
    "zh": {"Cd": "镉", "Hg": "汞", "As": "砷", "Pb": "铅", "Cr": "铬", "Cu": "铜", "Ni": "镍", "Zn": "锌",
           "Se": "硒", "pH": "pH", "OM": "有机质", "TN": "全氮", "AP": "有效磷", "AK": "速效钾", "CEC": "阳离子交换量"},
    "en": {"Cd": "Cadmium", "Hg": "Mercury", "As": "Arsenic", "Pb": "Lead", "Cr": "Chromium", "Cu": "Copper",
           "Ni": "Nickel", "Zn": "Zinc", "Se": "Selenium", "pH": "pH", "OM": "Organic matter", "TN": "Total nitrogen",
           "AP": "Available P", "AK": "Available K", "CEC": "CEC"},
}
VERDICTS = {
    "zh": {"meets": "符合", "does_not_meet": "不符合", "indeterminate": "待复检", "needs_sampling": "需补充采样",
           "not_assessed": "未评价"},
    "en": {"meets": "Meets", "does_not_meet": "Does not meet", "indeterminate": "Re-test needed",
           "needs_sampling": "More samples needed", "not_assessed": "Not assessed"},
}
BASES = {
    "zh": {"measured": "实测", "estimated": "插值估算", "not_assessed": "未评价"},
    "en": {"measured": "measured", "estimated": "estimated", "not_assessed": "not assessed"},
}


def analyte_name(analyte: str, lang: str) -> str:
    return ANALYTES[lang].get(analyte, analyte)


def conclusion_sentence(conclusion: dict | None, subject_kind: str, lang: str) -> str:
    """The land label's headline in one sentence, e.g. 结论：不符合绿色食品产地环境质量（NY/T 391）标准。"""
    if not conclusion:
        return STRINGS[lang]["not_graded"]
    standard = str(conclusion.get("standard") or "").split("-")[0]
    topic = STANDARD_TOPICS[lang].get(conclusion.get("pack", ""), standard)
    verdict = conclusion.get("verdict")
    failing = [analyte_name(a, lang) for a in conclusion.get("failing") or []]
    if verdict == "not_assessed":  # an area below coverage: not judged, never "does not meet" (DESIGN §5)
        if lang == "zh":
            text = f"结论：尚未评价（按{topic}（{standard}）标准，有样品依据的面积不足）"
            return text + (f"，超标元素：{'、'.join(failing)}。" if failing else "。")
        text = (f"Conclusion: this {subject_kind.lower()} is not yet assessed against the {topic.lower()} standard "
                f"({standard}): too little of its area is valued from samples")
        return text + (f"; above the limit: {', '.join(failing)}." if failing else ".")
    if verdict not in ("meets", "does_not_meet"):  # not assessed, re-test or more samples needed: no verdict
        if lang == "zh":
            return f"结论：尚不能判定是否符合{topic}（{standard}）标准（{VERDICTS['zh'].get(verdict, verdict)}）。"
        return (f"Conclusion: this {subject_kind.lower()} is not yet judged against the {topic.lower()} standard "
                f"({standard}): {VERDICTS['en'].get(verdict, verdict).lower()}.")
    if lang == "zh":
        text = f"结论：{VERDICTS['zh'].get(verdict, verdict)}{topic}（{standard}）标准"
        return text + (f"，超标元素：{'、'.join(failing)}。" if failing else "。")
    words = {"meets": "meets", "does_not_meet": "does not meet"}.get(verdict, "is not yet judged against")
    text = f"Conclusion: this {subject_kind.lower()} {words} the {topic.lower()} standard ({standard})"
    return text + (f"; above the limit: {', '.join(failing)}." if failing else ".")


def _primary(tag: str) -> str:
    return tag.strip().lower().replace("_", "-").split("-", 1)[0]


def negotiate(accept_language: str | None, override: str | None = None) -> str:
    """``?lang=`` wins when supported; else the best-weighted supported Accept-Language; else zh."""
    if override and _primary(override[:16]) in SUPPORTED:
        return _primary(override[:16])
    best, best_q = DEFAULT, 0.0
    for part in (accept_language or "")[:MAX_HEADER].split(",")[:32]:
        tag, _, params = part.partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:
                    q = 0.0
        lang = _primary(tag)
        if lang in SUPPORTED and q > best_q:
            best, best_q = lang, q
    return best


def grade_label(grade: str | None, lang: str) -> str:
    return GRADES[lang].get(grade or "", grade or "")


def basis_words(conclusion: Mapping[str, Any], lang: str) -> str:
    """实测 / 插值估算（Cd ± 0.031 mg/kg，据 12 个样点）/ 未评价: an estimate says its uncertainty."""
    est = conclusion.get("estimate")
    parts = conclusion.get("parcels_by_basis")
    if parts and parts.get("estimated"):  # an area: how many of its parcels are measured, how many estimated
        words = BASES[lang].get("estimated", "estimated")
        return f"{words}（{area_basis_text(parts.get('measured', 0), parts['estimated'], lang)}）" if lang == "zh" \
            else f"{words} ({area_basis_text(parts.get('measured', 0), parts['estimated'], lang)})"
    if conclusion.get("basis") == "estimated" and est:
        return basis_text(Basis("estimated", est.get("analyte"), est.get("sigma"), est.get("unit") or "",
                                int(est.get("samples") or 0)), lang)
    return BASES[lang].get(conclusion.get("basis"), conclusion.get("basis") or "")
