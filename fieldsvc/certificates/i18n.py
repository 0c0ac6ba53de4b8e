"""The public page's words in Chinese and English, and picking one (no Flask import).

A small dict is enough for one page; Babel would add catalogues and a build step for
about thirty strings.
"""

from __future__ import annotations

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
    "zh": {"clean": "清洁", "still_clean": "尚清洁", "A": "A 级", "B": "B 级", "C": "C 级"},
    "en": {"clean": "Clean", "still_clean": "Still clean", "A": "Grade A", "B": "Grade B", "C": "Grade C"},
}


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
