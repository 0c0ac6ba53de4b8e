"""Find machine values in a page's visible text: catalogue keys, snake_case codes, ISO times, long floats.

Shared by ``tests/api/test_console_words.py`` (every console page over the test client) and the
browser test (the same scan on Chromium's ``innerText``). A page passes when what a person reads is
words, local times and rounded numbers; values the people typed (names, file names, bag codes) are
passed in ``allowed`` and removed before the scan.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from fieldsvc.console import i18n

SNAKE = re.compile(r"(?<![\w./:-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w/])")
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")
LONG_FLOAT = re.compile(r"(?<![\w.])\d+\.\d{5,}")
ACTOR = re.compile(r"\b(?:user|device|system):[\w-]+")
JSON_LIKE = re.compile(r'[{\[]\s*"[a-z_]+"\s*:')
# status, verdict and role codes that are plain words: raw on a Chinese page, they are codes left untranslated
CODE_WORDS = {"pending", "approved", "rejected", "valid", "revoked", "expired", "superseded", "open", "resolved",
              "qualified", "indeterminate", "held", "complete", "incomplete", "official", "admin", "lab", "sampler",
              "pass", "fail", "exceeds", "paddy", "dryland", "vegetable", "orchard", "meets", "village", "parcel",
              "county", "composite", "blank", "duplicate", "merge", "none", "polluted"}
KEYS = {k for table in i18n.STRINGS.values() for k in table}


class _Text(HTMLParser):
    """The text a person sees: no script or style, option labels and button words included."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        quoted = tag == "td" and any(n == "data-quoted" for n, _ in attrs)
        if tag in ("script", "style", "title", "noscript") or quoted:
            self._skip += 1  # a cell quoting the uploaded file (its header) or the importer's English message
        for name, value in attrs:
            if name in ("placeholder", "aria-label", "alt") and value:
                self.parts.append(" " + value + " ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "title", "noscript", "td") and self._skip:
            self._skip -= 1
        self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def visible_text(page: str) -> str:
    parser = _Text()
    parser.feed(page)
    return re.sub(r"\s+", " ", "".join(parser.parts))


def raw_codes(text: str, lang: str, allowed: tuple[str, ...] = ()) -> list[str]:
    """Every machine value found in ``text`` (already visible text), with a little context."""
    for value in sorted(allowed, key=len, reverse=True):
        if value:
            text = text.replace(value, " ")
    found: list[str] = []

    def hit(kind: str, m: re.Match[str]) -> None:
        found.append(f"{kind} {m.group(0)!r} in …{text[max(0, m.start() - 40):m.end() + 40]}…")

    for kind, pattern in (("snake_case", SNAKE), ("iso time", ISO_TIME), ("long float", LONG_FLOAT),
                          ("actor id", ACTOR), ("json", JSON_LIKE)):
        for m in pattern.finditer(text):
            hit(kind, m)
    for m in re.finditer(r"(?<![\w/.-])[a-z][a-z_]+(?![\w/.-])", text):
        word = m.group(0)
        if word in KEYS and "_" in word:
            hit("catalogue key", m)
        elif lang == "zh" and (word in CODE_WORDS or word in KEYS):
            hit("untranslated", m)
    return found
