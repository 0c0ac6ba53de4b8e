"""QR matrices for labels and certificates, and a PNG for device provisioning.

``qrcode`` encodes the data; we only replace its mask search. ``qrcode`` builds and scores the
whole symbol once per mask (8 times), which costs 3 ms for a label URL and 12 ms for a signed
token, too slow for 1,000 labels or 50 certificates a second. Here ``qrcode`` builds the
symbol once with mask 0, and numpy derives the other seven (data modules XOR the change of
mask, new format bits) and scores them with the same penalty rules ``qrcode`` uses. The
result is the same symbol ``qrcode`` would choose (a test compares them) in a fraction of
the time.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import qrcode
from PIL import Image
from qrcode import util as qr_util
from qrcode.constants import ERROR_CORRECT_H, ERROR_CORRECT_L, ERROR_CORRECT_M, ERROR_CORRECT_Q
from qrcode.exceptions import DataOverflowError

from fieldsvc.errors import Problem

QUIET_ZONE_MODULES = 4
ECC_LEVELS = {"L": ERROR_CORRECT_L, "M": ERROR_CORRECT_M, "Q": ERROR_CORRECT_Q, "H": ERROR_CORRECT_H}
_FINDER_LIKE = (0b10111010000, 0b00001011101)  # 1:1:3:1:1 with four light modules on one side


@dataclass(frozen=True)
class QrMatrix:
    """A symbol without its quiet zone: ``modules[row][col]`` is True for dark."""

    version: int
    size: int
    modules: list[list[bool]]


def qr_matrix(text: str, ecc: str = "Q") -> QrMatrix:
    """Encode ``text`` at the smallest version; all-uppercase URLs use alphanumeric mode."""
    array, version = _encode(text, ecc)
    return QrMatrix(version=version, size=array.shape[0], modules=array.tolist())


def dark_runs(matrix: QrMatrix) -> list[tuple[int, int, int]]:
    """Horizontal runs of dark modules as ``(row, first_col, length)``; one rectangle each."""
    array = np.asarray(matrix.modules, dtype=np.int8)
    edges = np.diff(np.pad(array, ((0, 0), (1, 1))), axis=1)
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)
    return list(zip(rows.tolist(), starts.tolist(), (ends - starts).tolist(), strict=True))


def qr_png(text: str, box_size: int = 8, ecc: str = "M") -> bytes:
    """A PNG with a 4-module white quiet zone, ``box_size`` pixels per module."""
    if not 1 <= box_size <= 40:
        raise ValueError("box_size must be between 1 and 40")
    array, _ = _encode(text, ecc)
    framed = np.pad(array, QUIET_ZONE_MODULES)
    pixels = np.where(framed, 0, 255).astype(np.uint8).repeat(box_size, 0).repeat(box_size, 1)
    out = io.BytesIO()
    Image.fromarray(pixels, mode="L").convert("1").save(out, format="PNG", optimize=True)
    return out.getvalue()


def _encode(text: str, ecc: str) -> tuple[np.ndarray, int]:
    level = ECC_LEVELS.get(ecc)
    if level is None:
        raise ValueError(f"ecc must be one of {sorted(ECC_LEVELS)}")
    symbol = qrcode.QRCode(error_correction=level, border=0, mask_pattern=0)
    symbol.add_data(text)
    try:
        symbol.make(fit=True)
    except (DataOverflowError, ValueError):  # qrcode 8 raises ValueError past version 40
        raise Problem(
            422, "qr_data_too_long", "The text does not fit in a QR code.", length=len(text)
        ) from None
    base = np.array(symbol.get_matrix(), dtype=bool)
    return _best_masked(base, symbol.version, level), symbol.version


def _best_masked(base: np.ndarray, version: int, level: int) -> np.ndarray:
    """Re-mask the mask-0 symbol with each of the 8 masks and keep the lowest penalty."""
    function, reserved, masks = _layout(version)
    flips = (masks ^ masks[0]) & ~function
    candidates = base[None, :, :] ^ flips
    scored = candidates.copy()
    scored[:, reserved] = False  # qrcode scores with format and version bits light
    best = int(np.argmin(_penalties(scored)))
    chosen = candidates[best]
    _write_format(chosen, level, best)
    return chosen


@lru_cache(maxsize=48)
def _layout(version: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Function-pattern map, format/version-info map and the 8 mask grids for a version."""
    n = version * 4 + 17
    function = np.zeros((n, n), dtype=bool)
    function[:9, :9] = function[:9, n - 8 :] = function[n - 8 :, :9] = True
    finders = function.copy()
    positions = qr_util.pattern_position(version)
    for r in positions:
        for c in positions:
            if not finders[r, c]:
                function[r - 2 : r + 3, c - 2 : c + 3] = True
    function[6, :] = function[:, 6] = True
    reserved = np.zeros((n, n), dtype=bool)
    for row, col in _format_cells(n):
        reserved[row, col] = True
    reserved[n - 8, 8] = True  # the always-dark module
    if version >= 7:
        function[:6, n - 11 : n - 8] = function[n - 11 : n - 8, :6] = True
        reserved[:6, n - 11 : n - 8] = reserved[n - 11 : n - 8, :6] = True
    i, j = np.indices((n, n))
    masks = np.stack(
        [
            (i + j) % 2 == 0,
            i % 2 == 0,
            j % 3 == 0,
            (i + j) % 3 == 0,
            (i // 2 + j // 3) % 2 == 0,
            (i * j) % 2 + (i * j) % 3 == 0,
            ((i * j) % 2 + (i * j) % 3) % 2 == 0,
            ((i * j) % 3 + (i + j) % 2) % 2 == 0,
        ]
    )
    return function, reserved, masks


def _format_cells(n: int) -> list[tuple[int, int]]:
    """Cells of format bits 0..14, first the copy by the left finders, then the top copy."""
    vertical = [(i if i < 6 else i + 1 if i < 8 else n - 15 + i, 8) for i in range(15)]
    horizontal = [(8, n - i - 1 if i < 8 else 15 - i if i == 8 else 14 - i) for i in range(15)]
    return vertical + horizontal


def _write_format(array: np.ndarray, level: int, mask: int) -> None:
    bits = qr_util.BCH_type_info((level << 3) | mask)
    for k, (row, col) in enumerate(_format_cells(array.shape[0])):
        array[row, col] = bool((bits >> (k % 15)) & 1)


def _penalties(stack: np.ndarray) -> list[int]:
    """``qrcode.util.lost_point`` for each symbol of the stack, vectorised."""
    count = stack.shape[0]
    both = np.concatenate([stack, stack.transpose(0, 2, 1)])  # rows, then columns as rows
    total = (
        _run_penalties(both, count)
        + 3 * _uniform_blocks(stack)
        + 40 * _finder_like(both, count)
        + np.asarray(_balance(stack), dtype=np.int64)
    )
    return total.tolist()


def _run_penalties(both: np.ndarray, count: int) -> np.ndarray:
    """Each line run of 5+ same-colour modules costs its length minus 2."""
    lines = both.reshape(-1, both.shape[2]).astype(np.int8)
    width = lines.shape[1] + 2
    flat = np.pad(lines, ((0, 0), (1, 1)), constant_values=-1).ravel()
    starts = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    lengths = np.diff(starts)
    starts = starts[:-1]
    keep = (flat[starts] >= 0) & (lengths >= 5)
    owner = (starts[keep] // width) // both.shape[1] % count
    return np.bincount(owner, weights=lengths[keep] - 2, minlength=count).astype(np.int64)


def _uniform_blocks(stack: np.ndarray) -> np.ndarray:
    corner = stack[:, :-1, :-1]
    same = (corner == stack[:, 1:, :-1]) & (corner == stack[:, :-1, 1:]) & (corner == stack[:, 1:, 1:])
    return same.sum(axis=(1, 2))


def _finder_like(both: np.ndarray, count: int) -> np.ndarray:
    width = both.shape[2] - 10
    if width <= 0:
        return np.zeros(count, dtype=np.int64)
    window = np.zeros(both.shape[:2] + (width,), dtype=np.int16)
    for k in range(11):
        window |= both[:, :, k : k + width].astype(np.int16) << (10 - k)
    hits = ((window == _FINDER_LIKE[0]) | (window == _FINDER_LIKE[1])).sum(axis=(1, 2))
    return hits[:count] + hits[count:]


def _balance(stack: np.ndarray) -> list[int]:
    n = stack.shape[1]
    return [int(abs(float(dark) / (n**2) * 100 - 50) / 5) * 10 for dark in stack.sum(axis=(1, 2)).tolist()]
