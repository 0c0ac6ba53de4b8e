"""Configuration in one place: defaults, then ``FIELDSVC_*`` environment, then the caller's mapping.

Every key below is documented in the README's configuration table. The
environment variable for key ``X`` is ``FIELDSVC_X``; its type follows the
default's type, so ``FIELDSVC_DEMO=0`` is a bool and ``FIELDSVC_TOKEN_TTL_S=60``
an int.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": "",  # empty: sqlite:///<INSTANCE_PATH>/fieldsvc.db
    "INSTANCE_PATH": "",  # empty: ./instance next to app.py
    "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
    "SECRET_KEY": "",  # empty: generated once into the instance folder
    "DEMO": True,
    "LOG_LEVEL": "INFO",
    "TOKEN_TTL_S": 12 * 3600,
    "PASSWORD_HASH_PROFILE": "RFC_9106_LOW_MEMORY",
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_WINDOW_S": 300,
    "LOGIN_MAX_FAILURES_PER_ADDRESS": 100,  # failed logins per client address per window (a NAT, a county proxy)
    "MAX_REQUEST_BYTES": 25 * 1024 * 1024,
    "MAX_JSON_BYTES": 8 * 1024 * 1024,
    "MAX_JSON_DEPTH": 32,  # arrays/objects nested deeper in a JSON body → 400 json_too_deep, before parsing
    "PREFERRED_CHUNK_BYTES": 1024 * 1024,
    "MAX_BATCH_RECORDS": 500,
    "PULL_MAX_PAGE_BYTES": 4 * 1024 * 1024,  # a sync pull page ends after this much text (never inside one change)
    "MAX_PAGE_SIZE": 1000,
    "DEFAULT_PAGE_SIZE": 100,
    "MAX_IMPORT_FEATURES": 200_000,
    "MAX_IMPORT_BYTES": 128 * 1024 * 1024,
    "MAX_PARCEL_VERTICES": 10_000,  # positions in one parcel's geometry (all rings); more → 422 naming the feature
    "HOLD_TTL_S": 5 * 24 * 3600,
    "SQLITE_BUSY_TIMEOUT_MS": 10_000,
    "SQLITE_WAL_AUTOCHECKPOINT_PAGES": 10_000,
    "SQLITE_CHECKPOINT_INTERVAL_S": 0.25,  # SQLite: WAL checkpoints in a thread after commits, at most this often
    "SIGNING_KEY_PATH": "",  # certificates: private Ed25519 PEM to sign with; empty: <instance>/keys/ (made once)
    "LAND_LABEL_VALID_DAYS": 3 * 365,  # land labels: how long a label's signed token says it holds
    "CERTIFICATE_VALID_DAYS": 365,  # certificates: validity when POST /api/v1/certificates gives no valid_days
    "LABELS_MAX_CODES": 1000,  # certificates: most labels in one GET /api/v1/labels.pdf (codes × serials)
    # label quotas: per crop, expected yield (kg per m²) and package size (kg); a certificate's quota is
    # area × yield ÷ package, rounded down; a crop not listed gets no quota
    "LABEL_QUOTA_CROPS": {
        "水稻": {"yield_kg_per_m2": 0.6, "package_kg": 5}, "rice": {"yield_kg_per_m2": 0.6, "package_kg": 5},
        "茶叶": {"yield_kg_per_m2": 0.1, "package_kg": 0.25}, "tea": {"yield_kg_per_m2": 0.1, "package_kg": 0.25},
        "蔬菜": {"yield_kg_per_m2": 3.0, "package_kg": 1}, "vegetables": {"yield_kg_per_m2": 3.0, "package_kg": 1},
        "柑橘": {"yield_kg_per_m2": 2.5, "package_kg": 5}, "citrus": {"yield_kg_per_m2": 2.5, "package_kg": 5},
    },
    "SERIAL_WARN_CHECKS": 20,  # label serials: past this many checks the page warns it may be a copy
    "SERIAL_WARN_DAYS": 10,  # label serials: scanned on more distinct days than one label in a shop would be
    "VERIFY_RATE_LIMIT": 120,  # certificates: public page / verify requests per address per window, then 429
    "VERIFY_RATE_WINDOW_S": 60,  # certificates: the window of VERIFY_RATE_LIMIT
    "IDEMPOTENCY_TTL_S": 14 * 24 * 3600,  # sync push receipts kept this long for replays; then housekeeping drops them
    "MEDIA_ORPHAN_TTL_S": 7 * 24 * 3600,  # blobs (and partial uploads) no sample names are removed after this
    "LAB_IMPORT_MAX_BYTES": 32 * 1024 * 1024,  # one lab CSV/XLSX upload; larger is 413
    # XLSX is a zip: these are checked from the zip's directory and a scan of the sheet before parsing
    "LAB_XLSX_MAX_ROWS": 200_000,  # rows in the first sheet
    "LAB_XLSX_MAX_CELLS": 4_000_000,  # cells in the first sheet
    "LAB_XLSX_MAX_UNCOMPRESSED_BYTES": 64 * 1024 * 1024,  # all zip members together, uncompressed
    "LAB_XLSX_MAX_RATIO": 100,  # uncompressed / compressed size of any zip member
    "LAB_APPROVALS_REQUIRED": 1,  # officials (other than the importer) who must approve a result
    "FIELD_PHOTO_MAX_PX": 1600,  # field app: photos are scaled on the phone so the longer side is at most this
    "FIELD_PHOTO_QUALITY_PCT": 80,  # field app: JPEG quality (percent) of those photos
    "FIELD_SYNC_INTERVAL_S": 60,  # field app: automatic sync period while records wait and the network is up
    "GC_YOUNG_THRESHOLD": 50_000,  # container allocations between young collections of the cyclic GC; 0: Python's
    "TILE_MAX_BYTES": 500 * 1024,  # map tiles: the largest vector tile; a fuller tile keeps its largest parcels
    "BASEMAP_URL": "",  # maps: an XYZ template ({z}/{x}/{y}) of the basemap; empty: a plain background
    "BASEMAP_ATTRIBUTION": "",  # maps: the basemap's attribution text shown on the map
    "BASEMAP_OFFLINE": False,  # field app: keep basemap tiles offline too (where its terms allow)
    "FIELD_TILE_MIN_ZOOM": 12,  # field app: the lowest zoom of the assignment area's tiles kept offline
    "FIELD_TILE_MAX_ZOOM": 17,  # field app: the highest such zoom (whole zooms above the bounds below are left out)
    "FIELD_TILE_MAX_COUNT": 3000,  # field app: at most this many tiles kept offline (data and basemap together)
    "FIELD_TILE_MAX_MB": 60.0,  # field app: and at most this many megabytes of them
}

ENV_PREFIX = "FIELDSVC_"


def _coerce(key: str, raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise ValueError(f"{ENV_PREFIX}{key} must be a boolean (0/1), got {raw!r}")
    if isinstance(default, int):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{ENV_PREFIX}{key} must be an integer, got {raw!r}") from None
    if isinstance(default, float):
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"{ENV_PREFIX}{key} must be a number, got {raw!r}") from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{ENV_PREFIX}{key} must be a finite number >= 0, got {raw!r}")
        return value
    if isinstance(default, dict):  # a table as JSON, e.g. FIELDSVC_LABEL_QUOTA_CROPS
        try:
            value = json.loads(raw)
        except ValueError:
            raise ValueError(f"{ENV_PREFIX}{key} must be a JSON object, got {raw[:80]!r}") from None
        if not isinstance(value, dict):
            raise ValueError(f"{ENV_PREFIX}{key} must be a JSON object")
        return value
    return raw


def load_config(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Merge defaults → environment → overrides and fill the derived values."""
    environ = os.environ if environ is None else environ
    config = dict(DEFAULTS)
    for key, default in DEFAULTS.items():
        if ENV_PREFIX + key in environ:
            config[key] = _coerce(key, environ[ENV_PREFIX + key], default)
    config.update(overrides or {})
    instance = Path(config["INSTANCE_PATH"] or Path.cwd() / "instance").resolve()
    config["INSTANCE_PATH"] = str(instance)
    if not config["DATABASE_URL"]:
        config["DATABASE_URL"] = f"sqlite:///{instance / 'fieldsvc.db'}"
    config["PUBLIC_BASE_URL"] = str(config["PUBLIC_BASE_URL"]).rstrip("/")
    return config


def engine_name(database_url: str) -> str:
    """``sqlite`` or ``postgresql``; anything else is refused early."""
    if database_url.startswith("sqlite"):
        return "sqlite"
    if database_url.startswith(("postgresql", "postgres")):
        return "postgresql"
    raise ValueError(f"unsupported database URL scheme: {database_url.split(':', 1)[0]}")


def normalise_database_url(database_url: str) -> str:
    """PostgreSQL goes through psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url[len(prefix):]
    return database_url
