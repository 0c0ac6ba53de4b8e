"""``inputs._as_any``: on psycopg a chunk's ``IN (%s,…)`` list travels as one array parameter."""

from fieldsvc.grading.inputs import _as_any


def test_the_in_list_becomes_one_array_parameter_in_its_place():
    sql, params = _as_any("SELECT a FROM t WHERE p = %s AND c IN (%s,%s,%s) AND z = %s", ["P", 1, 2, 3, "Z"])
    assert sql == "SELECT a FROM t WHERE p = %s AND c = ANY(%s) AND z = %s"
    assert params == ("P", [1, 2, 3], "Z")


def test_statements_without_a_list_of_marks_are_left_as_they_are():
    for sql, params in [("SELECT a FROM t WHERE c NOT IN (%s,%s)", [1, 2]),
                        ("SELECT a FROM t WHERE c IN (%s)", [1]),
                        ("SELECT a FROM t WHERE k IN ('x','y') AND c = %s", [1])]:
        assert _as_any(sql, params) == (sql, tuple(params))
