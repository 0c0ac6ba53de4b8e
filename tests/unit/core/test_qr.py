from __future__ import annotations

import io
import random
import string
from datetime import date

import numpy as np
import pytest
import qrcode
import zxingcpp
from PIL import Image

from fieldsvc.certificates.codes import code_from_bytes, new_code, verify_url
from fieldsvc.certificates.signing import Claims, KeyRing, sign_claims
from fieldsvc.errors import Problem
from fieldsvc.render.qr import ECC_LEVELS, QUIET_ZONE_MODULES, dark_runs, qr_matrix, qr_png

RNG = random.Random(7)
QR_ALNUM = string.ascii_uppercase + string.digits + " $%*+-./:"
TEXTS = [
    "".join(RNG.choice(pool) for _ in range(length))
    for pool, length in [
        (QR_ALNUM, 1),
        (QR_ALNUM, 30),
        (QR_ALNUM, 44),
        (QR_ALNUM, 120),
        (QR_ALNUM, 400),
        (string.printable, 25),
        (string.printable, 150),
        (string.digits, 60),
        ("证书地块", 12),
    ]
]


def decode(png: bytes) -> list[str]:
    return [
        r.text
        for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)), formats=zxingcpp.BarcodeFormat.QRCode)
    ]


@pytest.mark.parametrize(
    "base",
    [
        "https://fieldsvc.example",
        "https://q.example.cn",
        "https://soil.agri.zj.gov.cn",
        "http://192.168.1.20:8080",
    ],
)
def test_uppercase_verify_url_is_alphanumeric_and_at_most_version_4_at_q(base):
    url = verify_url(base, new_code())
    assert url.startswith(base.upper()) and len(url.rsplit("/", 1)[1]) == 17
    matrix = qr_matrix(url, "Q")
    assert matrix.version <= 4
    reference = qrcode.QRCode(error_correction=ECC_LEVELS["Q"])
    reference.add_data(url)
    assert [chunk.mode for chunk in reference.data_list] == [qrcode.util.MODE_ALPHA_NUM]


def test_lowercase_url_would_need_byte_mode_and_a_bigger_symbol():
    url = verify_url("https://soil.agri.zj.gov.cn", new_code())
    assert qr_matrix(url.lower(), "Q").version > qr_matrix(url, "Q").version


@pytest.mark.parametrize("ecc", ["L", "M", "Q", "H"])
@pytest.mark.parametrize("text", TEXTS, ids=[f"{len(t)}chars" for t in TEXTS])
def test_matrix_is_exactly_what_qrcode_itself_would_draw(text, ecc):
    reference = qrcode.QRCode(error_correction=ECC_LEVELS[ecc], border=0)
    reference.add_data(text)
    reference.make(fit=True)
    matrix = qr_matrix(text, ecc)
    assert (matrix.version, matrix.size) == (reference.version, len(reference.modules))
    assert matrix.modules == reference.get_matrix()


def test_matrix_has_no_border_and_finder_patterns_at_the_corners():
    matrix = qr_matrix("HTTPS://FIELDSVC.EXAMPLE/C/" + new_code())
    assert matrix.size == 4 * matrix.version + 17 == len(matrix.modules) == len(matrix.modules[0])
    finder = [[True] * 7, [True, False, False, False, False, False, True]]
    for rows in (matrix.modules[:2], [row[-7:] for row in matrix.modules[:2]], matrix.modules[-7:][:2]):
        assert [r[:7] for r in rows] == finder


def test_signed_token_fits_version_10_at_q():
    claims = Claims(
        new_code(), "farm_park", "FP-330106-01", "A", "nyt391-green@3", date(2025, 1, 1), date(2028, 1, 1)
    )
    token = sign_claims(claims, KeyRing.generate())
    assert qr_matrix(token, "Q").version <= 10


def test_dark_runs_rebuild_the_matrix():
    matrix = qr_matrix(TEXTS[3])
    rebuilt = np.zeros((matrix.size, matrix.size), dtype=bool)
    for row, col, length in dark_runs(matrix):
        assert length >= 1
        rebuilt[row, col : col + length] = True
    assert rebuilt.tolist() == matrix.modules


@pytest.mark.parametrize(
    "text",
    [
        TEXTS[2],
        "https://fieldsvc.example/devices/enrol?token=Ab3_x-9",
        "证书地块",
        verify_url("https://x.example", code_from_bytes(bytes(10))),
    ],
)
def test_png_scans_back_to_the_same_text(text):
    assert decode(qr_png(text)) == [text]


@pytest.mark.parametrize("box_size", [1, 3, 8])
def test_png_has_a_four_module_white_quiet_zone(box_size):
    matrix = qr_matrix("DEVICE-TOKEN", "M")
    image = Image.open(io.BytesIO(qr_png("DEVICE-TOKEN", box_size=box_size))).convert("L")
    side = (matrix.size + 2 * QUIET_ZONE_MODULES) * box_size
    assert image.size == (side, side)
    pixels = np.asarray(image)
    q = QUIET_ZONE_MODULES * box_size
    for strip in (pixels[:q], pixels[-q:], pixels[:, :q], pixels[:, -q:]):
        assert strip.min() == 255
    assert pixels[q, q] == 0  # the finder pattern starts right after the quiet zone


def test_text_too_long_for_any_qr_is_a_problem():
    with pytest.raises(Problem) as caught:
        qr_matrix("A" * 5000)
    assert (caught.value.status, caught.value.code) == (422, "qr_data_too_long")


@pytest.mark.parametrize("ecc", ["q", "X", ""])
def test_unknown_error_correction_level_is_refused(ecc):
    with pytest.raises(ValueError):
        qr_matrix("A", ecc)
