"""The cyclic collector's young threshold is set once at start-up from the configuration."""

from __future__ import annotations

import gc

from fieldsvc import create_app


def test_create_app_sets_the_young_threshold_and_zero_keeps_it(tmp_path):
    before = gc.get_threshold()
    try:
        create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'a.db'}",
                    "GC_YOUNG_THRESHOLD": 12_345})
        assert gc.get_threshold() == (12_345, before[1], before[2])
        create_app({"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}",
                    "GC_YOUNG_THRESHOLD": 0})
        assert gc.get_threshold()[0] == 12_345  # 0: left as it is
        assert gc.isenabled()
    finally:
        gc.set_threshold(*before)
