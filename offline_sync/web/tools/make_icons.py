"""Draw the field app's icons (run once; the PNGs are committed): ``python offline_sync/web/tools/make_icons.py``.

A dark green tile with a soil core (three horizons) under a leaf: readable at 48 px, no text
so it needs no font. The maskable icon keeps everything inside the 80 % safe zone.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "icons"
GREEN = (11, 61, 31, 255)
LEAF = (111, 207, 127, 255)
HORIZONS = [(120, 78, 40, 255), (168, 112, 58, 255), (214, 170, 98, 255)]


def draw(size: int, safe: float, rounded: bool) -> Image.Image:
    scale = 4  # draw large, then downsample for smooth edges
    s = size * scale
    img = Image.new("RGBA", (s, s), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    if rounded:
        d.rounded_rectangle((0, 0, s - 1, s - 1), radius=int(s * 0.18), fill=GREEN)
    else:
        d.rectangle((0, 0, s - 1, s - 1), fill=GREEN)
    inner = s * safe
    x0 = (s - inner) / 2
    core_w, core_h = inner * 0.42, inner * 0.56
    cx = s / 2
    top = x0 + inner * 0.40
    for i, colour in enumerate(HORIZONS):
        y = top + i * core_h / 3
        d.rectangle((cx - core_w / 2, y, cx + core_w / 2, y + core_h / 3), fill=colour)
    d.rectangle((cx - core_w / 2, top, cx + core_w / 2, top + core_h), outline=(255, 255, 255, 255),
                width=max(2, int(s * 0.02)))
    leaf_w, leaf_h = inner * 0.34, inner * 0.30
    d.ellipse((cx - leaf_w * 0.05, top - leaf_h * 1.02, cx + leaf_w, top - leaf_h * 0.05), fill=LEAF)
    d.ellipse((cx - leaf_w * 0.80, top - leaf_h * 0.80, cx + leaf_w * 0.05, top - leaf_h * 0.02), fill=LEAF)
    d.line((cx, top - leaf_h * 0.9, cx, top), fill=(255, 255, 255, 255), width=max(2, int(s * 0.015)))
    return img.resize((size, size), Image.LANCZOS)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    draw(192, 0.86, True).save(OUT / "icon-192.png", optimize=True)
    draw(512, 0.86, True).save(OUT / "icon-512.png", optimize=True)
    draw(512, 0.66, False).save(OUT / "icon-maskable-512.png", optimize=True)
    draw(180, 0.80, False).convert("RGB").save(OUT / "apple-touch-icon.png", optimize=True)


if __name__ == "__main__":
    main()
