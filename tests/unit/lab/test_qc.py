from __future__ import annotations

from decimal import Decimal

import pytest

from fieldsvc.lab.importing import ResultRow, sample_code_key
from fieldsvc.lab.qc import CertifiedValue, DuplicateBand, QcRules, judge_qc

D = Decimal
GSS = {"GBW07405": {"Cd": CertifiedValue(D("0.45"), D("0.03")), "Hg": CertifiedValue(D("0.29"), None, True)}}


def result(
    code: str,
    value: str | None,
    *,
    analyte: str = "Cd",
    limit: str | None = None,
    qc: str | None = None,
    of: str | None = None,
    crm: str | None = None,
    line: int = 2,
) -> ResultRow:
    """A canonical row as importing.parse_results makes it; ``value=None`` is censored at ``limit``."""
    return ResultRow(
        line=line,
        sample_code=code,
        sample_code_key=sample_code_key(code),
        analyte=analyte,
        qualifier="=" if value is not None else "<",
        value=D(value) if value is not None else None,
        detection_limit=D(limit) if limit is not None else None,
        unit="mg/kg",
        raw_value=value or f"<{limit}",
        raw_unit="mg/kg",
        qc_type=qc,
        duplicate_of=of,
        crm=crm,
    )


def pair(analyte: str, a: str | None, b: str | None, limit: str | None = "0.01") -> list[ResultRow]:
    return [
        result("S1", a, analyte=analyte, limit=limit),
        result("S1-P", b, analyte=analyte, limit=limit, qc="duplicate", of="S1", line=3),
    ]


# ------------------------------------------------------------------ blanks


@pytest.mark.parametrize(
    ("value", "limit", "status", "reason"),
    [
        (None, "0.01", "pass", "blank_not_detected"),
        ("0.005", "0.01", "pass", "blank_within_limit"),
        ("0.01", "0.01", "pass", "blank_within_limit"),
        ("0.0101", "0.01", "fail", "blank_above_detection_limit"),
        ("0.02", None, "fail", "blank_without_limit"),
    ],
)
def test_method_blank_above_the_detection_limit_fails(value, limit, status, reason):
    outcome = judge_qc([result("BLK", value, limit=limit, qc="blank")], {}, QcRules())
    (item,) = outcome.items
    assert (item.kind, item.status, item.reason) == ("blank", status, reason)
    assert outcome.is_held("Cd") == (status == "fail")


def test_blank_without_its_own_limit_uses_the_rules_fallback():
    rules = QcRules(blank_limits={"Cd": D("0.03")})
    outcome = judge_qc([result("BLK", "0.02", qc="blank")], {}, rules)
    assert outcome.items[0].status == "pass"
    assert outcome.items[0].numbers["limit"] == D("0.03")


# ------------------------------------------------------------------ duplicates


@pytest.mark.parametrize(
    ("analyte", "a", "b", "status", "limit_pct"),
    [
        # Cd: 30 % while the pair's mean is below 0.4 mg/kg, 25 % from exactly 0.4.
        ("Cd", "0.347", "0.451", "pass", D(30)),  # mean 0.399, RD 26.07 %
        ("Cd", "0.348", "0.452", "fail", D(25)),  # mean exactly 0.4, RD 26 %
        ("Cd", "0.35", "0.45", "pass", D(25)),  # mean 0.4, RD exactly 25 %
        ("Cd", "0.17", "0.23", "pass", D(30)),  # mean 0.2, RD exactly 30 %
        ("Cd", "0.17", "0.2301", "fail", D(30)),
        ("Hg", "0.1", "0.15", "pass", D(50)),  # RD 40 %
        ("Hg", "0.1", "0.2", "fail", D(50)),  # RD 66.7 %
        ("Cu", "37", "43", "pass", D(15)),  # RD exactly 15 %
        ("Cu", "37", "43.01", "fail", D(15)),
        *[(k, "37", "44", "fail", D(15)) for k in ("Pb", "Zn", "Cr", "Ni", "As")],  # RD 17.28 %
        ("Se", "37", "44", "pass", D(20)),  # others: 20 %
        ("Mn", "500", "620", "fail", D(20)),  # RD 21.4 %
        ("Cd", "0", "0", "pass", D(30)),
    ],
)
def test_duplicate_relative_difference_is_judged_against_its_concentration_band(
    analyte, a, b, status, limit_pct
):
    outcome = judge_qc(pair(analyte, a, b), {}, QcRules())
    (item,) = outcome.items
    assert (item.kind, item.analyte, item.status) == ("duplicate", analyte, status)
    assert item.numbers["limit_pct"] == limit_pct
    assert outcome.is_held(analyte) == (status == "fail")


def test_duplicate_reports_its_numbers_as_decimals():
    (item,) = judge_qc(pair("Hg", "0.1", "0.2"), {}, QcRules()).items
    assert item.numbers["rd_pct"] == D("66.67")
    assert item.numbers["mean"] == D("0.15")
    assert all(isinstance(v, Decimal) for k, v in item.numbers.items() if k != "duplicate_of")


@pytest.mark.parametrize(("a", "b"), [(None, "0.3"), ("0.3", None), (None, None)])
def test_censored_duplicate_pairs_are_skipped_and_hold_nothing(a, b):
    outcome = judge_qc(pair("Cd", a, b), {}, QcRules())
    assert [i.status for i in outcome.items] == ["skipped"]
    assert outcome.items[0].passed is None
    assert outcome.held == {}


def test_duplicate_finds_its_original_by_normalised_code():
    rows = [result("Ｓ 1", "0.3"), result("dup", "0.31", qc="duplicate", of="s1", line=3)]
    assert judge_qc(rows, {}, QcRules()).items[0].status == "pass"


def test_duplicate_without_its_original_in_the_batch_fails():
    rows = [result("dup", "0.31", qc="duplicate", of="S9", line=3)]
    outcome = judge_qc(rows, {}, QcRules())
    assert outcome.items[0].reason == "duplicate_original_missing"
    assert outcome.is_held("Cd")


def test_duplicate_bands_are_configurable():
    rules = QcRules(duplicate_bands={"Cu": (DuplicateBand(D(10), D(30)), DuplicateBand(D(5)))})
    low = judge_qc(pair("Cu", "20", "22"), {}, rules).items[0]  # mean 21 < 30: 10 %, RD 9.5 %
    high = judge_qc(pair("Cu", "40", "42"), {}, rules).items[0]  # mean 41 ≥ 30: 5 %, RD 4.9 %
    over = judge_qc(pair("Cu", "40", "43"), {}, rules).items[0]  # RD 7.2 %
    assert [(i.status, i.numbers["limit_pct"]) for i in (low, high, over)] == [
        ("pass", D(10)),
        ("pass", D(5)),
        ("fail", D(5)),
    ]


# ------------------------------------------------------------------ CRMs


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("0.45", "pass"),
        ("0.42", "pass"),  # exactly value − U
        ("0.48", "pass"),  # exactly value + U
        ("0.4199", "fail"),
        ("0.4801", "fail"),
    ],
)
def test_crm_passes_within_certified_value_plus_minus_u(value, status):
    outcome = judge_qc([result("GSS-5", value, qc="crm", crm="GBW07405")], GSS, QcRules())
    (item,) = outcome.items
    assert (item.kind, item.status) == ("crm", status)
    assert (item.numbers["low"], item.numbers["high"]) == (D("0.42"), D("0.48"))
    assert outcome.is_held("Cd") == (status == "fail")


@pytest.mark.parametrize("value", ["0.29", "5", "0"])
def test_reference_only_crm_values_are_never_judged(value):
    outcome = judge_qc([result("GSS-5", value, analyte="Hg", qc="crm", crm="GBW07405")], GSS, QcRules())
    assert [(i.status, i.reason) for i in outcome.items] == [("skipped", "crm_reference_only")]
    assert outcome.held == {}


@pytest.mark.parametrize(
    ("row", "status", "reason"),
    [
        (result("X", "0.45", qc="crm", crm="GBW99999"), "fail", "crm_unknown"),
        (result("X", "1", analyte="Pb", qc="crm", crm="GBW07405"), "skipped", "crm_not_certified"),
        (result("X", None, limit="0.1", qc="crm", crm="GBW07405"), "fail", "crm_out_of_range"),
        (result("X", None, limit="0.5", qc="crm", crm="GBW07405"), "skipped", "crm_censored"),
        (result("X", "0.45", qc="crm", crm=" gbw07405 "), "pass", "crm_within_range"),
    ],
)
def test_crm_edge_cases(row, status, reason):
    (item,) = judge_qc([row], GSS, QcRules()).items
    assert (item.status, item.reason) == (status, reason)


def test_crm_certificate_may_name_analytes_by_alias():
    crms = {"GBW07405": {"镉": CertifiedValue(D("0.45"), D("0.03"))}}
    (item,) = judge_qc([result("X", "0.5", qc="crm", crm="GBW07405")], crms, QcRules()).items
    assert item.status == "fail"


# ------------------------------------------------------------------ the batch


def test_a_failing_item_holds_only_its_analyte_with_the_reasons():
    rows = [
        result("S1", "0.3", line=2),
        result("S1", "20", analyte="Pb", line=3),
        result("BLK", "0.05", limit="0.01", qc="blank", line=4),
        result("BLK", None, analyte="Pb", limit="0.1", qc="blank", line=5),
        result("GSS-5", "0.46", qc="crm", crm="GBW07405", line=6),
    ]
    outcome = judge_qc(rows, GSS, QcRules())
    assert [(i.line, i.analyte, i.status) for i in outcome.items] == [
        (4, "Cd", "fail"),
        (5, "Pb", "pass"),
        (6, "Cd", "pass"),
    ]
    assert list(outcome.held) == ["Cd"]
    (reason,) = outcome.held["Cd"]
    assert reason["kind"] == "blank"
    assert reason["line"] == 4
    assert reason["reason"] == "blank_above_detection_limit"
    assert reason["measured"] == D("0.05") and reason["limit"] == D("0.01")


def test_a_batch_without_qc_rows_has_no_items_and_holds_nothing():
    outcome = judge_qc([result("S1", "0.3"), result("S2", None, limit="0.01")], {}, QcRules())
    assert outcome.items == [] and outcome.held == {}


def test_default_rules_are_used_when_none_are_given():
    assert judge_qc(pair("Cd", "0.348", "0.452"), {}).items[0].status == "fail"
