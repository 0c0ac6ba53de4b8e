from __future__ import annotations

import io
from decimal import Decimal

import openpyxl
import pytest

from fieldsvc.errors import Problem
from fieldsvc.lab.importing import (
    FileUnreadable,
    ResultRow,
    parse_results,
    read_table,
    sample_code_key,
    sha256_of,
)

D = Decimal

LONG_EN = "sample_code,analyte,value,unit,detection_limit,method\n"
LONG_ZH = "样品编号,检测项目,检测结果,单位,检出限,检测方法\n"


def parse_csv(text: str, encoding: str = "utf-8"):
    return parse_results(read_table(text.encode(encoding), "results.csv"))


def xlsx(rows: list[list[object]]) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def only(report) -> ResultRow:
    assert report.errors == []
    assert len(report.rows) == 1
    return report.rows[0]


def errors_by_line(report) -> dict[int, dict[str, str]]:
    return {e.line: e.errors for e in report.errors}


# ------------------------------------------------------------------ encodings and CSV dialects

CHINESE_FILE = LONG_ZH + "土样-001,镉,0.21,mg/kg,0.01,GB/T 17141\n土样-001,有机质,2.53,%,,重铬酸钾容量法\n"


@pytest.mark.parametrize(
    ("encode", "encoding"),
    [
        (lambda t: t.encode("utf-8"), "utf-8"),
        (lambda t: t.encode("utf-8-sig"), "utf-8-sig"),
        (lambda t: t.encode("gb18030"), "gb18030"),
        (lambda t: t.encode("gbk"), "gb18030"),
        (lambda t: t.encode("utf-16"), "utf-16"),
    ],
)
def test_chinese_file_reads_the_same_in_every_encoding(encode, encoding):
    table = read_table(encode(CHINESE_FILE), "结果.csv")
    assert table.encoding == encoding
    report = parse_results(table)
    assert report.errors == []
    assert [(r.sample_code, r.analyte, r.value, r.unit) for r in report.rows] == [
        ("土样-001", "Cd", D("0.21"), "mg/kg"),
        ("土样-001", "OM", D("25.3"), "g/kg"),
    ]
    assert report.rows[0].method == "GB/T 17141"


def test_bom_does_not_leak_into_the_first_header():
    report = parse_csv("\ufeffsample_code,analyte,value,unit\nS1,Cd,0.2,mg/kg\n")
    assert only(report).sample_code == "S1"


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("sample_code,analyte,value,unit\nS1,Cd,0.25,mg/kg\n", ","),
        ("sample_code;analyte;value;unit\nS1;Cd;0,25;mg/kg\n", ";"),
        ("sample_code\tanalyte\tvalue\tunit\nS1\tCd\t0.25\tmg/kg\n", "\t"),
        ("sample_code\tanalyte\tvalue\tunit\nS1\tCd\t0,25\tmg/kg\n", "\t"),
        ('sample_code,analyte,value,unit\nS1,Cd,"0,25",mg/kg\n', ","),
        ("sample_code;analyte;value;unit\r\nS1;Cd;0,25;mg/kg\r\n", ";"),
        ("sample_code,analyte,value,unit\r\nS1,Cd,0.25,mg/kg", ","),
        ('"sample_code","analyte","value","unit"\n"S1","Cd","0.25","mg/kg"\n', ","),
    ],
)
def test_delimiters_quotes_line_endings_and_decimal_commas(text, delimiter):
    table = read_table(text.encode(), "r.csv")
    assert table.delimiter == delimiter
    row = only(parse_results(table))
    assert (row.value, row.line) == (D("0.25"), 2)


def test_line_numbers_are_physical_lines_of_each_record_start():
    text = (
        "sample_code,analyte,value,unit,method\r\n"  # 1
        "\r\n"  # 2 blank
        'S1,Cd,0.2,mg/kg,"two\r\nline method"\r\n'  # 3-4
        ",,,,\r\n"  # 5 empty cells only
        "S2,Cd,0.3,mg/kg,x\r\n"  # 6
        "S3,Cd,bad,mg/kg,x\r\n"  # 7
    )
    report = parse_csv(text)
    assert [r.line for r in report.rows] == [3, 6]
    assert report.rows[0].method == "two\r\nline method"
    assert [e.line for e in report.errors] == [7]


def test_title_rows_above_the_header_are_skipped():
    report = parse_csv("土壤检测报告\n\n样品编号,检测项目,检测结果,单位\nS1,Cd,0.2,mg/kg\n")
    assert report.header_line == 3
    assert only(report).line == 4


def test_unquoted_decimal_comma_in_a_comma_file_names_the_extra_column():
    report = parse_csv("sample_code,analyte,value,unit\nS1,Cd,0,25,mg/kg\n")
    assert report.rows == []
    (error,) = report.errors
    assert error.line == 2
    assert "column 5" in error.errors
    assert "quote decimal commas" in error.errors["column 5"]


# ------------------------------------------------------------------ XLSX


def test_xlsx_float_cells_become_exact_decimals_and_rows_keep_sheet_numbers():
    data = xlsx(
        [
            ["Soil results"],
            [],
            ["sample_code", "analyte", "value", "unit", "detection_limit"],
            ["S1", "Cd", 0.3, "mg/kg", 0.01],
            [],
            ["S2", "Pb", 12, "mg/kg", None],
            ["S3", "Pb", 2.675, "mg/kg", None],
            ["S4", "Cd", "＜0.05", "mg/kg", None],
            ["S5", "As", 1.2e-05, "g/kg", None],
        ]
    )
    table = read_table(data, "results.xlsx")
    assert table.kind == "xlsx"
    report = parse_results(table)
    assert report.errors == []
    assert report.header_line == 3
    got = [(r.line, r.sample_code, r.qualifier, r.value, r.detection_limit) for r in report.rows]
    assert got == [
        (4, "S1", "=", D("0.3"), D("0.01")),
        (6, "S2", "=", D("12"), None),
        (7, "S3", "=", D("2.675"), None),
        (8, "S4", "<", None, D("0.05")),
        (9, "S5", "=", D("0.012"), None),
    ]


def test_xlsx_wide_layout_with_chinese_headers():
    data = xlsx(
        [["样品编号", "镉(mg/kg)", "铅（mg/kg）", "pH"], ["S1", 0.15, "0.5L", 6.8], ["S2", "未检出", 20, 7.1]]
    )
    report = parse_results(read_table(data, "r.xlsx"))
    assert report.layout == "wide"
    errors = errors_by_line(report)
    assert errors == {
        3: {"镉(mg/kg)": "'未检出' needs a detection limit, but the detection-limit column is empty."}
    }
    assert [(r.line, r.analyte, r.qualifier, r.value, r.detection_limit) for r in report.rows] == [
        (2, "Cd", "=", D("0.15"), None),
        (2, "Pb", "<", None, D("0.5")),
        (2, "pH", "=", D("6.8"), None),
    ]


def test_named_xlsx_that_is_not_a_zip_is_unreadable():
    with pytest.raises(FileUnreadable):
        read_table(b"sample_code,analyte\n", "results.xlsx")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04 this is not really a zip", "XLSX"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "xls"),
        (b"\x00\x01\x02\x03binary", "UTF-8"),
    ],
)
def test_unreadable_files_raise_a_problem_not_a_crash(data, message):
    with pytest.raises(Problem, match=message) as caught:
        read_table(data, "upload.bin")
    assert caught.value.status == 422
    assert caught.value.code == "unreadable_file"


# ------------------------------------------------------------------ long layout


def test_long_layout_keeps_raw_value_and_unit_and_converts_to_canonical():
    report = parse_csv(LONG_EN + "S1,Cd,150,µg/kg,20,ICP-MS\n")
    row = only(report)
    assert report.layout == "long"
    assert (row.value, row.unit, row.detection_limit) == (D("0.15"), "mg/kg", D("0.02"))
    assert (row.raw_value, row.raw_unit, row.method) == ("150", "µg/kg", "ICP-MS")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("S1,Cd,<0.05,mg/kg,,", ("<", None, D("0.05"))),
        ("S1,Cd,ND,mg/kg,0.01,", ("<", None, D("0.01"))),
        ("S1,Cd,未检出,μg/kg,10,", ("<", None, D("0.01"))),
        ("S1,Cd,0.05L,ppm,,", ("<", None, D("0.05"))),
        ("S1,Cd,<0.05,mg/kg,0.01,", ("<", None, D("0.05"))),
        ("S1,Cd,0.2,mg/kg,0.01,", ("=", D("0.2"), D("0.01"))),
    ],
)
def test_censored_rows_store_the_limit_they_are_censored_at_and_no_value(line, expected):
    row = only(parse_csv(LONG_EN + line + "\n"))
    assert (row.qualifier, row.value, row.detection_limit) == expected
    assert row.censored == (expected[0] == "<")


def test_chinese_long_layout_with_lab_id_and_qc_columns():
    text = (
        "样品编号,实验室编号,检测项目,检测结果,单位,检出限,质控类型,平行原样,标准物质\n"
        "S1,L-01,镉,0.30,mg/kg,0.01,,,\n"
        "S1-P,L-02,镉,0.32,mg/kg,0.01,平行样,S1,\n"
        "BLK-1,L-03,镉,ND,mg/kg,0.01,空白,,\n"
        "GSS-5,L-04,镉,0.45,mg/kg,0.01,标准物质,,GBW07405\n"
    )
    report = parse_csv(text)
    assert report.errors == []
    got = [(r.sample_code, r.lab_id, r.qc_type, r.duplicate_of, r.crm) for r in report.rows]
    assert got == [
        ("S1", "L-01", None, None, None),
        ("S1-P", "L-02", "duplicate", "S1", None),
        ("BLK-1", "L-03", "blank", None, None),
        ("GSS-5", "L-04", "crm", None, "GBW07405"),
    ]


@pytest.mark.parametrize(
    ("line", "column", "message"),
    [
        ("S1,Cdx,0.2,mg/kg,,", "analyte", "Unknown analyte 'Cdx'"),
        ("S1,,0.2,mg/kg,,", "analyte", "Analyte is empty"),
        ("S1,Cd,0.2,furlongs,,", "unit", "Unknown unit 'furlongs'"),
        ("S1,Cd,0.2,,,", "unit", "Unit is empty"),
        ("S1,pH,6.5,g/kg,,", "unit", "cannot express pH"),
        ("S1,Cd,abc,mg/kg,,", "value", "not a number"),
        ("S1,Cd,,mg/kg,,", "value", "empty"),
        ("S1,Cd,-0.2,mg/kg,,", "value", "negative"),
        ("S1,Cd,ND,mg/kg,,", "value", "needs a detection limit"),
        ("S1,Cd,0.2,mg/kg,zero,", "detection_limit", "not a number"),
        (",Cd,0.2,mg/kg,,", "sample_code", "Sample code is empty"),
        ("S1,pH,45,,,", "value", "impossible for pH"),
        ("S1,Cd,200,%,,", "value", "impossible for Cd"),
    ],
)
def test_row_errors_name_the_line_and_the_column(line, column, message):
    report = parse_csv(LONG_EN + "S0,Pb,20,mg/kg,,\n" + line + "\n")
    assert [r.sample_code for r in report.rows] == ["S0"]
    assert len(report.errors) == 1
    assert report.errors[0].line == 3
    assert list(report.errors[0].errors) == [column]
    assert message in report.errors[0].errors[column]
    assert report.errors[0].to_dict() == {"line": 3, "errors": report.errors[0].errors}


def test_row_errors_use_the_files_own_header_names():
    report = parse_csv(LONG_ZH + "S1,未知项目,0.2,mg/kg,,\nS2,镉,0.2,斤,,\n")
    assert errors_by_line(report) == {
        2: {"检测项目": "Unknown analyte '未知项目'."},
        3: {"单位": "Unknown unit '斤' for Cd."},
    }


def test_all_problems_of_one_row_are_reported_together():
    text = "sample_code,analyte,value,unit,qc_type\n,Cd,0.2,mg/kg,spike\n"
    (error,) = parse_csv(text).errors
    assert set(error.errors) == {"sample_code", "qc_type"}


@pytest.mark.parametrize(
    ("qc", "extra", "column"),
    [("duplicate", ",", "duplicate_of"), ("crm", ",", "crm"), ("spike", ",", "qc_type")],
)
def test_qc_rows_need_their_partner_column(qc, extra, column):
    text = f"sample_code,analyte,value,unit,qc_type,duplicate_of,crm\nQ1,Cd,0.2,mg/kg,{qc}{extra}\n"
    (error,) = parse_csv(text).errors
    assert column in error.errors


@pytest.mark.parametrize(
    ("header", "column"),
    [
        ("sample_code,analyte,value\n", "unit"),
        ("sample_code,foo,bar\n", "analyte"),
        ("sample_code,analyte,value,unit,样品编号\n", "样品编号"),
    ],
)
def test_header_problems_are_reported_on_the_header_line(header, column):
    report = parse_csv("title\n" + header + "S1,Cd,0.2,mg/kg,\n")
    assert report.rows == []
    (error,) = report.errors
    assert error.line == 2
    assert column in error.errors


@pytest.mark.parametrize("text", ["", "\n\n", "analyte,value\nCd,1\n"])
def test_file_without_a_sample_code_header_is_one_error(text):
    report = parse_csv(text)
    assert report.layout is None
    assert [list(e.errors) for e in report.errors] == [["sample_code"]]


# ------------------------------------------------------------------ wide layout


@pytest.mark.parametrize(
    ("header", "analyte", "value"),
    [
        ("Cd (mg/kg)", "Cd", D("0.2")),
        ("镉(mg/kg)", "Cd", D("0.2")),
        ("Cd（mg/kg）", "Cd", D("0.2")),
        ("总镉 (μg/kg)", "Cd", D("0.0002")),
        ("Cd [mg/kg]", "Cd", D("0.2")),
        ("Cd/(mg/kg)", "Cd", D("0.2")),
        ("Cd mg/kg", "Cd", D("0.2")),
        ("有机质(g/kg)", "OM", D("0.2")),
        ("OM (%)", "OM", D("2")),
        ("CEC (cmol(+)/kg)", "CEC", D("0.2")),
        ("阳离子交换量（cmol（+）/kg）", "CEC", D("0.2")),
        ("pH", "pH", D("0.2")),
        ("pH（无量纲）", "pH", D("0.2")),
        ("苯并(a)芘(mg/kg)", "BaP", D("0.2")),
    ],
)
def test_wide_headers_carry_analyte_and_unit(header, analyte, value):
    report = parse_results(read_table(xlsx([["样品编号", header], ["S1", "0.2"]]), "w.xlsx"))
    row = only(report)
    assert (row.analyte, row.value, row.column) == (analyte, value, header)


def test_wide_layout_with_unit_and_detection_limit_rows_and_unmeasured_cells():
    text = "样品编号,镉,铅,汞,备注\n单位,mg/kg,mg/kg,μg/kg,\n检出限,0.01,0.1,2,\nS1,0.2,25,ND,ok\nS2,-,/,5,\n"
    report = parse_csv(text)
    assert report.errors == []
    assert report.warnings == ["Column '备注' ignored."]
    assert [
        (r.line, r.sample_code, r.analyte, r.qualifier, r.value, r.detection_limit) for r in report.rows
    ] == [
        (4, "S1", "Cd", "=", D("0.2"), D("0.01")),
        (4, "S1", "Pb", "=", D("25"), D("0.1")),
        (4, "S1", "Hg", "<", None, D("0.002")),
        (5, "S2", "Hg", "=", D("0.005"), D("0.002")),
    ]


def test_wide_column_without_a_unit_is_reported_once_on_the_header_line():
    report = parse_csv("sample_code,Cd,Pb (mg/kg)\nS1,0.2,20\nS2,0.3,21\n")
    assert errors_by_line(report) == {1: {"Cd": "No unit for Cd; write it in the header like 'Cd (mg/kg)'."}}
    assert [r.analyte for r in report.rows] == ["Pb", "Pb"]


def test_wide_header_with_unknown_unit_or_analyte_is_an_error():
    report = parse_csv("sample_code,Cd (stone),Xx (mg/kg)\nS1,0.2,1\n")
    (error,) = report.errors
    assert error.line == 1
    assert set(error.errors) == {"Cd (stone)", "Xx (mg/kg)"}


def test_wide_bad_detection_limit_is_reported_on_the_detection_limit_row():
    report = parse_csv("sample_code,Cd (mg/kg)\nDL,abc\nS1,0.2\n")
    assert list(errors_by_line(report)) == [2]
    assert [r.value for r in report.rows] == [D("0.2")]


def test_wide_row_errors_name_each_bad_column():
    report = parse_csv("sample_code,Cd (mg/kg),Pb (mg/kg),Hg (mg/kg)\nS1,x,20,-1\n")
    assert report.rows == []
    errors = errors_by_line(report)
    assert list(errors) == [2]
    assert errors[2]["Cd (mg/kg)"] == "value 'x' is not a number."
    assert "negative" in errors[2]["Hg (mg/kg)"]
    assert "Pb (mg/kg)" not in errors[2]


# ------------------------------------------------------------------ duplicates within a file


def test_conflicting_duplicate_is_an_error_on_the_later_line_naming_the_earlier():
    report = parse_csv(LONG_EN + "S1,Cd,0.2,mg/kg,,\nS2,Cd,0.3,mg/kg,,\ns 1,镉,0.25,mg/kg,,\n")
    assert [r.line for r in report.rows] == [2, 3]
    assert errors_by_line(report) == {4: {"value": "Conflicts with line 2 (S1 Cd = 0.2 mg/kg)."}}


@pytest.mark.parametrize(
    "repeat",
    ["S1,Cd,0.2,mg/kg,,", "S1,cadmium,200,µg/kg,,", "Ｓ１,Cd,0.20,ppm,,", "s1,Cd,0.2,mg/kg,0.01,ICP-MS"],
)
def test_identical_duplicate_is_kept_once(repeat):
    report = parse_csv(LONG_EN + "S1,Cd,0.2,mg/kg,,\n" + repeat + "\n")
    assert only(report).line == 2
    assert report.warnings == ["Line 3 repeats line 2; kept once."]


def test_same_sample_and_analyte_as_a_qc_row_is_not_a_duplicate():
    text = (
        "sample_code,analyte,value,unit,qc_type,duplicate_of\nS1,Cd,0.2,mg/kg,,\n"
        "S1,Cd,0.3,mg/kg,duplicate,S1\n"
    )
    report = parse_csv(text)
    assert report.errors == []
    assert [r.qc_type for r in report.rows] == [None, "duplicate"]


def test_censored_and_measured_repeat_conflict():
    report = parse_csv(LONG_EN + "S1,Cd,<0.05,mg/kg,,\nS1,Cd,0.05,mg/kg,,\n")
    assert errors_by_line(report) == {3: {"value": "Conflicts with line 2 (S1 Cd = <0.05 mg/kg)."}}


# ------------------------------------------------------------------ small helpers


@pytest.mark.parametrize(
    ("code", "key"),
    [
        ("S-001", "s-001"),
        (" s-001 ", "s-001"),
        ("Ｓ－００１", "s-001"),
        ("S 001", "s001"),
        ("S\u3000001", "s001"),
    ],
)
def test_sample_code_key_normalises_width_case_and_whitespace(code, key):
    assert sample_code_key(code) == key


def test_sha256_of_is_the_hex_digest():
    assert sha256_of(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
