"""``flask --app app lab import FILE`` through the Flask CLI runner."""

from __future__ import annotations

from tests.api.test_lab_imports import LONG_HEADER, make_samples, results


def test_cli_import_shows_progress_and_is_idempotent(app, client, official, make_account, tmp_path):
    make_samples(app, "S-001")
    lab = make_account("lab")
    path = tmp_path / "results.csv"
    path.write_text(LONG_HEADER + "S-001,Cd,0.2,mg/kg,,\nS-001,Pb,31,mg/kg,,\nS-404,Zn,80,mg/kg,,\n")
    runner = app.test_cli_runner()
    out = runner.invoke(args=["lab", "import", str(path), "--user", lab.username])
    assert out.exit_code == 0, out.output
    assert "importing results.csv" in out.output and "3/3" in out.output
    assert "3 rows, 2 accepted, 1 held" in out.output and "S-404" in out.output
    items = results(client, official)
    assert len(items) == 3 and {i["created_by"] for i in items} == {f"user:{lab.username}"}
    again = runner.invoke(args=["lab", "import", str(path), "--user", lab.username])
    assert again.exit_code == 0 and "already imported" in again.output
    assert len(results(client, official)) == 3


def test_cli_import_reports_row_errors_and_writes_nothing(app, client, official, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(LONG_HEADER + "S-001,Cd,0.2,mg/kg,,\nS-001,Pb,31,parsecs,,\n")
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["lab", "import", str(path), "--dry-run"])
    assert dry.exit_code == 0 and '"line": 3' in dry.output
    out = runner.invoke(args=["lab", "import", str(path)])
    assert out.exit_code == 1 and "line 3: unit:" in out.output and "validation_failed" in out.output
    assert results(client, official) == []
    bad_user = runner.invoke(args=["lab", "import", str(path), "--user", official.username + "x"])
    assert bad_user.exit_code == 1 and "not a lab or official account" in bad_user.output
