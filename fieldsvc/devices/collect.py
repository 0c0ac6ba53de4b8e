"""ODK Collect's settings QR for a device (DESIGN §4.3).

Collect scans a QR holding its settings JSON, zlib-compressed (with the zlib header) and then
Base64-encoded (Collect's ``CompressionUtils``). The server URL carries the device token
(``/key/<token>``, see ``keyurl``), so Collect needs no username or password.

The device token itself is stored only hashed (``api_tokens``); to show the QR again later (the
device API and the console's device page) a copy is kept encrypted (Fernet) under a key derived
from the app's ``SECRET_KEY``. A changed ``SECRET_KEY`` cannot decrypt it: the settings are then
null and the device must be registered again; the token keeps working.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

PROJECT_NAME = "fieldsvc 土壤采样"
LANGUAGES = ("zh", "en")


def _fernet(secret_key: str) -> Fernet:
    key = hashlib.sha256(b"fieldsvc collect key v1\x00" + secret_key.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def seal(token: str, secret_key: str) -> str:
    return _fernet(secret_key).encrypt(token.encode()).decode()


def unseal(sealed: str | None, secret_key: str) -> str | None:
    if not sealed:
        return None
    try:
        return _fernet(secret_key).decrypt(sealed.encode()).decode()
    except (InvalidToken, ValueError):
        return None


def server_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url}/key/{token}"


def settings(public_base_url: str, token: str, device_name: str, language: str = "zh") -> dict[str, Any]:
    """The settings JSON Collect imports: server URL with the key, project, language, auto-send."""
    # Kept small: every key makes the QR denser. ``match_exactly`` has Collect follow the server's
    # form list (and the manifest's parcels.csv) on its own; ``admin`` must be present, even empty.
    return {
        "general": {"server_url": server_url(public_base_url, token),
                    "app_language": language if language in LANGUAGES else "zh",
                    "form_update_mode": "match_exactly", "autosend": "wifi_and_cellular"},
        "admin": {},
        "project": {"name": f"{PROJECT_NAME} · {device_name}"[:80]},
    }


def qr_payload(settings_json: dict[str, Any]) -> str:
    """What the QR carries: Base64 of the zlib-compressed JSON."""
    text = json.dumps(settings_json, ensure_ascii=False, separators=(",", ":"))
    return base64.b64encode(zlib.compress(text.encode("utf-8"))).decode("ascii")


def decode_payload(payload: str) -> dict[str, Any]:
    """The inverse of ``qr_payload`` (as Collect reads it)."""
    return json.loads(zlib.decompress(base64.b64decode(payload)).decode("utf-8"))
