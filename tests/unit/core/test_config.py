"""Configuration precedence: defaults → FIELDSVC_* environment → the caller's mapping."""

from __future__ import annotations

import pytest

from fieldsvc.config import DEFAULTS, engine_name, load_config, normalise_database_url


def test_defaults_fill_derived_values(tmp_path):
    cfg = load_config({"INSTANCE_PATH": str(tmp_path)}, environ={})
    assert cfg["DATABASE_URL"] == f"sqlite:///{tmp_path / 'fieldsvc.db'}"
    assert cfg["MAX_BATCH_RECORDS"] == DEFAULTS["MAX_BATCH_RECORDS"]


def test_environment_overrides_defaults_and_mapping_overrides_environment(tmp_path):
    env = {"FIELDSVC_MAX_BATCH_RECORDS": "50", "FIELDSVC_DEMO": "0", "FIELDSVC_PUBLIC_BASE_URL": "https://x.cn/",
           "FIELDSVC_INSTANCE_PATH": str(tmp_path)}
    cfg = load_config(None, environ=env)
    assert cfg["MAX_BATCH_RECORDS"] == 50 and cfg["DEMO"] is False
    assert cfg["PUBLIC_BASE_URL"] == "https://x.cn"
    cfg = load_config({"MAX_BATCH_RECORDS": 7}, environ=env)
    assert cfg["MAX_BATCH_RECORDS"] == 7
    cfg = load_config(None, environ={**env, "FIELDSVC_SQLITE_CHECKPOINT_INTERVAL_S": "0.5"})
    assert cfg["SQLITE_CHECKPOINT_INTERVAL_S"] == 0.5


@pytest.mark.parametrize("key, raw", [("MAX_BATCH_RECORDS", "many"), ("DEMO", "maybe"),
                                     ("SQLITE_CHECKPOINT_INTERVAL_S", "soon"), ("SQLITE_CHECKPOINT_INTERVAL_S", "-1"),
                                     ("SQLITE_CHECKPOINT_INTERVAL_S", "nan")])
def test_bad_environment_values_name_the_variable(key, raw):
    with pytest.raises(ValueError, match=f"FIELDSVC_{key}"):
        load_config(None, environ={f"FIELDSVC_{key}": raw})


def test_database_urls():
    assert engine_name("sqlite:///x.db") == "sqlite"
    assert engine_name("postgresql://u@h/db") == "postgresql"
    assert normalise_database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(ValueError):
        engine_name("mysql://u@h/db")
