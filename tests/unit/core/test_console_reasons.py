"""Qualification reasons in the console's words, from the codes grading gives."""

import pytest

from fieldsvc.console.i18n import reason_text


@pytest.mark.parametrize(("reason", "zh", "en"), [
    ("grade_below_A: B", "等级低于 A（B 级）", "Grade below A (B)"),
    ("not_qualified: Cd exceeds", "不合格：Cd exceeds", "Not qualified: Cd exceeds"),
    ("indeterminate", "无法判定", "Indeterminate"),
    ("indeterminate: Hg no_ph", "无法判定：Hg no_ph", "Indeterminate: Hg no_ph"),
    ("incomplete_samples", "有未完成的样品（暂挂或等待照片）", "Samples not complete (held or awaiting photos)"),
    ("something_new: x", "something_new: x", "something_new: x"),  # an unknown code is shown as it is
])
def test_reason_codes_read_as_words(reason, zh, en):
    assert (reason_text(reason, "zh"), reason_text(reason, "en")) == (zh, en)
