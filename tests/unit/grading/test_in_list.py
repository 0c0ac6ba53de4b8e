"""A run's driver-level membership tests: ``IN (?,…)`` on SQLite, one array parameter on psycopg."""

from fieldsvc.grading.inputs import _Reader


def test_on_psycopg_the_list_is_one_array_parameter_in_its_place():
    sql = _Reader.translate(False, f"SELECT a FROM t WHERE p = ? AND c {_Reader.in_list_for(False, 3)} AND z = ?")
    assert sql == "SELECT a FROM t WHERE p = %s AND c = ANY(%s) AND z = %s"
    assert ("P", *_Reader.listed_for(False, (1, 2, 3)), "Z") == ("P", [1, 2, 3], "Z")


def test_on_sqlite_the_list_is_one_mark_per_value():
    assert f"c {_Reader.in_list_for(True, 3)}" == "c IN (?,?,?)"
    assert _Reader.listed_for(True, (1, 2, 3)) == [1, 2, 3]
