"""``flask --app app rule-packs add FILE``: validated, versioned, never replacing a stored version."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from fieldsvc.grading.rules import load_pack


def _write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data, default=float), encoding="utf-8")
    return path


def test_rule_packs_add_from_the_cli(app, client, official, tmp_path):
    runner = app.test_cli_runner()
    data = copy.deepcopy(dict(load_pack("green_food_soil").data))
    data.update(code="provincial_green_soil", version="2026.1", name="A provincial revision (test)")
    data["estimation"] = {**data["estimation"], "search_radius_m": 900}
    ok = runner.invoke(args=["rule-packs", "add", str(_write(tmp_path / "p.json", data))])
    assert ok.exit_code == 0, ok.output
    assert "added provincial_green_soil 2026.1" in ok.output and "NOT verified" in ok.output
    items = client.get("/api/v1/rule-packs", headers=official.headers).get_json()["items"]
    assert any(i["code"] == "provincial_green_soil" and i["version"] == "2026.1" for i in items)
    stored = Path(app.instance_path) / "rule_packs" / "provincial_green_soil-2026.1.json"
    before = stored.read_bytes()

    again = dict(data, name="changed under the same version")
    dup = runner.invoke(args=["rule-packs", "add", str(_write(tmp_path / "dup.json", again))])
    assert dup.exit_code != 0 and "rule_pack_version_exists" in dup.output
    assert stored.read_bytes() == before

    bad = dict(data, version="2026.2", estimation={"min_neighbours": 0, "z": -1})
    refused = runner.invoke(args=["rule-packs", "add", str(_write(tmp_path / "bad.json", bad))])
    assert refused.exit_code != 0
    assert "estimation.min_neighbours" in refused.output and "estimation.z" in refused.output
    assert sorted(p.name for p in stored.parent.iterdir()) == [stored.name]
    assert load_pack("provincial_green_soil").version == "2026.1"
    assert load_pack("provincial_green_soil").estimation.search_radius_m == 900
