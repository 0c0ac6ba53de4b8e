"""Certificate and label PDF throughput against a bare reportlab page in the same run.

Run: ``.venv/bin/python bench/certificates_pdf.py [CERTIFICATES]`` (default 200).
- certificates/s: ``render_certificate`` for distinct certificates (zh + en text in the
  embedded CJK subset, a verify-URL QR and a signed-token QR, one PDF each). Views and
  tokens are built before the clock starts; signing is timed on its own.
- labels: one ``render_labels`` call for a 1,000-label A4 3x7 sheet (48 pages).
- baseline: a bare reportlab A4 page with one line of Helvetica text, one PDF each, as many
  as there are certificates.
Target (issue): >= 50 certificates/s in one process; 1,000 labels in well under 5 s.
Prints a few human lines and ends with one JSON line: medians of 3 runs in this process.
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import time
from datetime import date
from pathlib import Path

from reportlab.pdfgen.canvas import Canvas

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fieldsvc.certificates.codes import new_code, verify_url  # noqa: E402
from fieldsvc.certificates.pdf import CertificateView, LabelView, render_certificate, render_labels  # noqa: E402
from fieldsvc.certificates.signing import Claims, KeyRing, sign_claims  # noqa: E402

RUNS = 3
LABELS = 1000
BASE = "https://fieldsvc.example"


def make_views(count: int, ring: KeyRing) -> tuple[list[CertificateView], float]:
    views, signing = [], 0.0
    for i in range(count):
        code = new_code()
        claims = Claims(
            code, "parcel", f"P330106-{i:04d}", "clean", "nyt391-green@3", date(2025, 4, 10), date(2028, 5, 1)
        )
        started = time.perf_counter()
        token = sign_claims(claims, ring)
        signing += time.perf_counter() - started
        views.append(
            CertificateView(
                code=code,
                verify_url=verify_url(BASE, code),
                token=token,
                key_id=ring.current.kid,
                subject_type="parcel",
                subject_name=f"东山村{i % 40 + 1}号茶园地块",
                subject_code=claims.subject_code,
                county="临安区",
                township="青山湖街道",
                village="东山村",
                grade="clean",
                verdict="qualified",
                rule_pack_code="nyt391-green",
                rule_pack_version="3",
                standard="NY/T 391-2021 绿色食品 产地环境质量",
                pack_verified=i % 2 == 0,
                tested_on=date(2025, 4, 10),
                tested_from=date(2025, 3, 2),
                issued_at=date(2025, 5, 1),
                valid_until=date(2028, 5, 1),
            )
        )
    return views, signing


def time_certificates(views: list[CertificateView]) -> tuple[float, int]:
    started = time.perf_counter()
    total = sum(len(render_certificate(view)) for view in views)
    return time.perf_counter() - started, total


def time_labels(labels: list[LabelView]) -> tuple[float, int]:
    started = time.perf_counter()
    size = len(render_labels(labels, "a4_3x7"))
    return time.perf_counter() - started, size


def time_baseline(count: int) -> float:
    started = time.perf_counter()
    for i in range(count):
        out = io.BytesIO()
        canvas = Canvas(out)
        canvas.setFont("Helvetica", 12)
        canvas.drawString(72, 720, f"Baseline page {i}")
        canvas.showPage()
        canvas.save()
    return time.perf_counter() - started


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    ring = KeyRing.generate()
    views, signing = make_views(count, ring)
    labels = [
        LabelView(code, verify_url(BASE, code), "东山村三组茶园地块")
        for code in (new_code() for _ in range(LABELS))
    ]
    render_certificate(views[0])  # font registration and template load, once per process
    cert_times, label_times, base_times = [], [], []
    for _ in range(RUNS):
        elapsed, cert_bytes = time_certificates(views)
        cert_times.append(elapsed)
        elapsed, label_bytes = time_labels(labels)
        label_times.append(elapsed)
        base_times.append(time_baseline(count))
    cert_s, label_s, base_s = (statistics.median(t) for t in (cert_times, label_times, base_times))
    result = {
        "certificates": count,
        "certificates_per_s": round(count / cert_s, 1),
        "certificate_kb": round(cert_bytes / count / 1024, 1),
        "signing_per_s": round(count / signing, 0),
        "labels": LABELS,
        "labels_s": round(label_s, 3),
        "labels_pdf_kb": round(label_bytes / 1024, 1),
        "baseline_pages_per_s": round(count / base_s, 1),
        "certificate_vs_baseline": round(base_s / cert_s, 3),
        "target_certificates_per_s": 50,
        "target_labels_s": 5,
        "runs": RUNS,
    }
    print(f"A4 certificates: {result['certificates_per_s']}/s ({result['certificate_kb']} KB each)")
    print(f"1,000-label A4 sheet: {result['labels_s']} s ({result['labels_pdf_kb']} KB)")
    print(f"baseline bare reportlab page: {result['baseline_pages_per_s']}/s")
    print(f"certificate speed vs baseline: {result['certificate_vs_baseline']}x")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
