"""The CJK font for certificates and labels.

reportlab's built-in fonts have no Chinese glyphs, so we embed WenQuanYi Micro Hei (a
TrueType collection reportlab can subset). It is looked up once per process.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

CJK_FONT_NAME = "WQYMicroHei"
MONO_FONT_NAME = "Courier-Bold"
FONT_ENV = "FIELDSVC_CJK_FONT"
SEARCH_PATHS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/wenquanyi/wqy-microhei/wqy-microhei.ttc",
    "/usr/local/share/fonts/wqy-microhei.ttc",
    "/opt/homebrew/share/fonts/wqy-microhei.ttc",
)

_lock = threading.Lock()


class CjkFontMissing(RuntimeError):
    """No usable CJK font: install fonts-wqy-microhei or point FIELDSVC_CJK_FONT at a .ttc/.ttf."""


def find_cjk_font() -> Path:
    """The env var wins; otherwise the first standard path that exists."""
    configured = os.environ.get(FONT_ENV)
    if configured:
        path = Path(configured)
        if not path.is_file():
            raise CjkFontMissing(f"{FONT_ENV}={configured} is not a file")
        return path
    for candidate in SEARCH_PATHS:
        if Path(candidate).is_file():
            return Path(candidate)
    raise CjkFontMissing(
        "No CJK font found for PDF certificates. Install the Debian package fonts-wqy-microhei "
        f"or set {FONT_ENV} to a TrueType font file. Looked in: {', '.join(SEARCH_PATHS)}"
    )


def cjk_font() -> str:
    """Register the CJK font with reportlab (once) and return its name."""
    with _lock:
        if CJK_FONT_NAME not in pdfmetrics.getRegisteredFontNames():
            path = find_cjk_font()
            try:
                font = TTFont(CJK_FONT_NAME, str(path), subfontIndex=0)
            except Exception as exc:  # reportlab raises bare TTFError/KeyError on bad files
                raise CjkFontMissing(f"{path} is not a TrueType font reportlab can embed: {exc}") from exc
            pdfmetrics.registerFont(font)
    return CJK_FONT_NAME
