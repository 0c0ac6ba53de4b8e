"""The console's value formatting (``console/display.py``): what a person reads instead of the stored value."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from fieldsvc.console import display


def test_times_are_the_countys_local_time_to_the_minute():
    assert display.local_minute("2026-12-04T16:50:36.251123Z") == "2026-12-05 00:50"
    assert display.local_minute(datetime(2026, 12, 4, 16, 50, 59, tzinfo=UTC)) == "2026-12-05 00:50"
    assert display.local_minute("2026-11-20T08:30:00+08:00") == "2026-11-20 08:30"
    assert display.local_minute("2026-12-04") == "2026-12-04" and display.local_minute(None) == "—"
    assert display.local_day("2027-12-04T21:28:21.794602Z") == "2027-12-05"


def test_numbers_keep_their_measured_decimals_and_indices_two():
    assert display.measured("0.10") == "0.10" and display.measured(Decimal("20")) == "20"
    assert display.measured(0.949927996482) == "0.9499" and display.measured(20.0) == "20"
    assert display.measured("0.123456789") == "0.1235"
    assert display.fixed("1.05333333333") == "1.05" and display.fixed(None) == "—"
    assert display.percent(1) == "100 %" and display.percent("0.0997165646531") == "10.0 %"
    assert display.percent(0.216441953947) == "22 %" and display.percent(0) == "0 %"


def test_codes_become_words_in_both_languages():
    assert display.actor_name("user:wang", "zh") == "wang"
    assert display.actor_name("user:system", "zh") == "系统" and display.actor_name("system", "en") == "system"
    assert display.actor_name("device:dev_1", "en") == "Device dev_1"
    assert display.analyte_name("Cd", "zh") == "镉 (Cd)" and display.analyte_name("pH", "en") == "pH"
    assert display.value_text("land_use_observed", "paddy", "zh") == "水田"
    assert display.value_text("sample_type", "composite", "en") == "composite"
    assert display.field_label("pick.depth_bottom_cm", "zh") == "采样深度下限 (cm)"
    assert display.word("act_conflict_id_conflict", "zh") == "同步冲突：同一编号的不同记录"


def test_a_location_is_degrees_minutes_seconds_with_its_accuracy():
    text = display.location_text({"lat": 28.18032025, "lon": 115.62101902500001, "accuracy_m": 4.5,
                                  "mock": True}, "en")
    assert text == "28°10′49.2″N 115°37′15.7″E ±4.5 m · mock location"


def test_packs_by_their_standards_name():
    from fieldsvc.grading.rules import DEFAULT_PACK

    zh, en = display.pack_name(DEFAULT_PACK, "zh"), display.pack_name({"code": DEFAULT_PACK}, "en")
    assert "_" not in zh and "_" not in en and "NY/T 391" in en
    assert display.pack_name("no_such_pack", "en") == "no_such_pack"


def test_import_messages_and_warnings_in_chinese():
    assert display.lab_message("Unknown analyte 'Zz'.", "zh") == "未知的检测项目 'Zz'。"
    assert display.lab_message("value 'abc' is not a number.", "zh") == "'abc' 不是数字。"
    assert display.lab_message("Something new.", "zh") == "Something new."
    warning = "QC failed for Cd (line 5: Blank 0.05 mg/kg is above the detection limit 0.01.); 2 Cd results held by QC."
    assert display.import_warning(warning, "zh") == "镉 (Cd) 质控未通过（见下表），该项目的 2 条结果被质控暂挂。"
    moves = display.transitions([{"verdict": "qualified", "previous": None}, {"verdict": "qualified"},
                                 {"verdict": "not_qualified", "previous": {"verdict": "qualified"}}])
    assert moves == [("first", "qualified", 2), ("qualified", "not_qualified", 1)]
