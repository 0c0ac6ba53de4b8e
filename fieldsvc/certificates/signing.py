"""Ed25519 signing keys and the compact signed certificate token.

The token lets anyone holding our public key check a certificate offline, so it has to be
short enough for a QR code at ECC Q and must never crash a verifier on bad input.

Token bytes (version 2), all integers big-endian::

    version:u8 = 2 | kid:8 | claims | signature:64        (signature over everything before it)
    claims = code:10 | subject_type:u8 | tested_on:u16 | valid_until:u16 | kind:u8
             | subject_code:str | grade:str | rule_pack:str | iss:str
    str    = length:u8 | UTF-8 bytes

``kind`` is 1 certificate, 2 land label; ``iss`` names the issuer identity (``<id>:<version>``,
published in ``/.well-known/fieldsvc-keys.json``), empty when none is configured. Version 1
tokens (no ``kind``, no ``iss``) were signed before these existed and still verify: they read as
certificates with no issuer.

``code`` is the 80 random bits of the certificate code (its check character is implied),
``subject_type`` is 1 parcel, 2 farm_park, 3 village, and dates are days since 2000-01-01.
The bytes are written as unpadded Crockford Base32 in uppercase (RFC 4648 bit order, the
Crockford alphabet of the certificate codes), so the QR stays in alphanumeric mode. A token
with no strings left empty is about 120 bytes, about 195 characters, a version 10 QR at Q.

Key ids are the first 8 bytes of SHA-256 of the raw 32-byte public key, shown as 13
Crockford Base32 characters.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fieldsvc.certificates.codes import (
    code_from_bytes,
    code_to_bytes,
    crockford_b32decode,
    crockford_b32encode,
    is_valid_code,
)
from fieldsvc.errors import Problem

TOKEN_VERSION = 2
TOKEN_VERSIONS = (1, 2)
KINDS = ("certificate", "land_label")
MAX_TOKEN_CHARS = 512
KID_BYTES = 8
SIGNATURE_BYTES = 64
SUBJECT_TYPES = ("parcel", "farm_park", "village")
KEY_FILE_PREFIX = "signing-key-"
INDEX_FILE = "keys.json"
LOCK_FILE = ".lock"

_EPOCH = date(2000, 1, 1)
_FIXED = struct.Struct(">10sBHH")
_MIN_TOKEN_BYTES = 1 + KID_BYTES + _FIXED.size + 3 + SIGNATURE_BYTES


class KeyRingError(RuntimeError):
    """The key folder or configured key is unusable (an operator problem, not a client one)."""


@dataclass(frozen=True)
class Claims:
    """What a certificate asserts; every field is public (no people, no coordinates)."""

    code: str
    subject_type: str
    subject_code: str
    grade: str
    rule_pack: str
    tested_on: date
    valid_until: date
    kind: str = "certificate"
    iss: str = ""

    def to_dict(self) -> dict[str, str | None]:
        return {
            "kind": self.kind,
            "iss": self.iss or None,
            "code": self.code,
            "subject_type": self.subject_type,
            "subject_code": self.subject_code,
            "grade": self.grade,
            "rule_pack": self.rule_pack,
            "tested_on": self.tested_on.isoformat(),
            "valid_until": self.valid_until.isoformat(),
        }


@dataclass(frozen=True)
class VerifiedToken:
    claims: Claims
    kid: str
    key_status: str  # "current" | "retired"


@dataclass(frozen=True)
class SigningKey:
    """One key of the ring. The private half is kept out of repr and comparisons."""

    kid: str
    kid_bytes: bytes
    public_key: Ed25519PublicKey = field(repr=False, compare=False)
    created_at: datetime
    retired: bool = False
    private_key: Ed25519PrivateKey | None = field(default=None, repr=False, compare=False)

    @property
    def public_raw(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def sign(self, data: bytes) -> bytes:
        if self.private_key is None:
            raise KeyRingError(f"key {self.kid} can only verify")
        return self.private_key.sign(data)


def key_id_bytes(public_key: Ed25519PublicKey) -> bytes:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).digest()[:KID_BYTES]


def key_id(public_key: Ed25519PublicKey) -> str:
    """The 13-character key id printed on certificates and in the keys document."""
    return crockford_b32encode(key_id_bytes(public_key))


def _make_key(
    public_key: Ed25519PublicKey,
    created_at: datetime,
    *,
    retired: bool = False,
    private_key: Ed25519PrivateKey | None = None,
) -> SigningKey:
    kid_raw = key_id_bytes(public_key)
    return SigningKey(
        kid=crockford_b32encode(kid_raw),
        kid_bytes=kid_raw,
        public_key=public_key,
        created_at=created_at,
        retired=retired,
        private_key=private_key,
    )


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _load_pem(pem: bytes | str) -> tuple[Ed25519PublicKey, Ed25519PrivateKey | None]:
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        if b"PUBLIC KEY" in data:
            public = serialization.load_pem_public_key(data)
            private = None
        else:
            private = serialization.load_pem_private_key(data, password=None)
            public = private.public_key()
    except (ValueError, TypeError) as exc:
        raise KeyRingError("not a readable unencrypted PEM key") from exc
    if not isinstance(public, Ed25519PublicKey):
        raise KeyRingError("signing keys must be Ed25519")
    return public, private  # type: ignore[return-value]


class KeyRing:
    """All keys that verify, and the one that signs (the newest key not retired)."""

    def __init__(self, keys: Iterable[SigningKey], path: Path | None = None) -> None:
        self._keys = sorted(keys, key=lambda k: (k.created_at, k.kid), reverse=True)
        self._by_kid = {k.kid_bytes: k for k in self._keys}
        self.path = path

    def __repr__(self) -> str:
        current = self.current_or_none()
        return f"KeyRing(current={current.kid if current else None!r}, keys={len(self._keys)})"

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        """Newest first."""
        return tuple(self._keys)

    def current_or_none(self) -> SigningKey | None:
        return next((k for k in self._keys if not k.retired and k.private_key is not None), None)

    @property
    def current(self) -> SigningKey:
        key = self.current_or_none()
        if key is None:
            raise KeyRingError("no current signing key")
        return key

    def status(self, key: SigningKey) -> str:
        return "current" if key is self.current_or_none() else "retired"

    def find(self, kid: bytes) -> SigningKey | None:
        return self._by_kid.get(kid)

    @classmethod
    def generate(cls) -> KeyRing:
        """An in-memory ring with one fresh key (tests, demos)."""
        private = Ed25519PrivateKey.generate()
        return cls([_make_key(private.public_key(), _now(), private_key=private)])

    @classmethod
    def from_pem(
        cls,
        pem: bytes | str,
        *,
        retired: Iterable[bytes | str] = (),
        created_at: datetime | None = None,
    ) -> KeyRing:
        """A configured key (private PEM) plus older keys (public or private PEM) that still verify."""
        public, private = _load_pem(pem)
        if private is None:
            raise KeyRingError("the configured signing key must be a private key")
        moment = created_at or _now()
        keys = [_make_key(public, moment, private_key=private)]
        for i, old in enumerate(retired, start=1):
            old_public, _ = _load_pem(old)
            keys.append(_make_key(old_public, moment - timedelta(seconds=i), retired=True))
        return cls(keys)

    @classmethod
    def load_or_create(cls, path: Path) -> KeyRing:
        """Read the key folder, making it (0700) and a first key (0600) when there is none."""
        path = Path(path)
        if not path.exists():
            path.mkdir(mode=0o700, parents=True)
            os.chmod(path, 0o700)
        with _folder_lock(path):
            ring = cls._read_folder(path)
            if ring.current_or_none() is None:
                _write_new_key(path)
                ring = cls._read_folder(path)
        return ring

    @classmethod
    def load(cls, path: Path) -> KeyRing:
        """Read the key folder without creating anything."""
        return cls._read_folder(Path(path))

    def rotate(self) -> SigningKey:
        """Retire every signing key and make a new current one; old tokens still verify."""
        if self.path is None:
            raise KeyRingError("only a key folder can rotate; change the configured key instead")
        with _folder_lock(self.path):
            index = _read_index(self.path)
            moment = _iso(_now())
            for meta in index.values():
                meta.setdefault("retired_at", None)
                if meta["retired_at"] is None:
                    meta["retired_at"] = moment
            _write_index(self.path, index)
            _write_new_key(self.path)
            fresh = self._read_folder(self.path)
        self._keys, self._by_kid = fresh._keys, fresh._by_kid
        return self.current

    @classmethod
    def _read_folder(cls, path: Path) -> KeyRing:
        index = _read_index(path)
        keys = []
        for file in sorted(path.glob(f"{KEY_FILE_PREFIX}*.pem")):
            public, private = _load_pem(file.read_bytes())
            kid = key_id(public)
            if file.name != f"{KEY_FILE_PREFIX}{kid}.pem":
                raise KeyRingError(f"{file.name} holds key {kid}; its name must match")
            meta = index.get(kid, {})
            created = meta.get("created_at")
            created_at = _parse_iso(created) if created else datetime.fromtimestamp(file.stat().st_mtime, UTC)
            retired = bool(meta.get("retired_at"))
            keys.append(_make_key(public, created_at, retired=retired, private_key=private))
        missing = set(index) - {k.kid for k in keys}
        if missing:
            raise KeyRingError(f"key files missing for {sorted(missing)}; old certificates would fail")
        return cls(keys, path)


@contextlib.contextmanager
def _folder_lock(path: Path) -> Iterator[None]:
    """Several app processes may start at once; only one of them makes the first key."""
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _read_index(path: Path) -> dict[str, dict[str, Any]]:
    file = path / INDEX_FILE
    if not file.exists():
        return {}
    try:
        keys = json.loads(file.read_text("utf-8"))["keys"]
    except (ValueError, KeyError, TypeError) as exc:
        raise KeyRingError(f"{file} is not a key index") from exc
    if not isinstance(keys, dict):
        raise KeyRingError(f"{file} is not a key index")
    return keys


def _write_index(path: Path, index: dict[str, dict[str, Any]]) -> None:
    tmp = path / f".{INDEX_FILE}.tmp"
    tmp.write_text(json.dumps({"format": 1, "keys": index}, indent=2, sort_keys=True) + "\n", "utf-8")
    os.replace(tmp, path / INDEX_FILE)


def _write_new_key(path: Path) -> str:
    private = Ed25519PrivateKey.generate()
    kid = key_id(private.public_key())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path / f"{KEY_FILE_PREFIX}{kid}.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    index = _read_index(path)
    index[kid] = {"created_at": _iso(_now()), "retired_at": None}
    _write_index(path, index)
    return kid


# --- claims encoding -------------------------------------------------------------------------


class _Malformed(ValueError):
    pass


def _days(day: date, name: str) -> int:
    days = (day - _EPOCH).days
    if not 0 <= days <= 0xFFFF:
        raise ValueError(f"{name} must be between 2000-01-01 and 2179-06-06")
    return days


def _put_str(text: str, name: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 255:
        raise ValueError(f"{name} is longer than 255 UTF-8 bytes")
    return bytes([len(raw)]) + raw


def encode_claims(claims: Claims) -> bytes:
    """The compact claims bytes of a version 2 token (see the module docstring)."""
    if not is_valid_code(claims.code):
        raise ValueError("code is not a certificate code")
    if claims.subject_type not in SUBJECT_TYPES:
        raise ValueError(f"subject_type must be one of {SUBJECT_TYPES}")
    if claims.kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    fixed = _FIXED.pack(
        code_to_bytes(claims.code),
        SUBJECT_TYPES.index(claims.subject_type) + 1,
        _days(claims.tested_on, "tested_on"),
        _days(claims.valid_until, "valid_until"),
    )
    return (
        fixed
        + bytes([KINDS.index(claims.kind) + 1])
        + _put_str(claims.subject_code, "subject_code")
        + _put_str(claims.grade, "grade")
        + _put_str(claims.rule_pack, "rule_pack")
        + _put_str(claims.iss, "iss")
    )


def decode_claims(raw: bytes, version: int = TOKEN_VERSION) -> Claims:
    """Strict inverse of :func:`encode_claims` (or of version 1's); raises ValueError on any deviation."""
    if len(raw) < _FIXED.size + (version >= 2):
        raise _Malformed("claims are too short")
    code, subject, tested, valid = _FIXED.unpack_from(raw)
    if not 1 <= subject <= len(SUBJECT_TYPES):
        raise _Malformed("unknown subject type")
    kind, pos = "certificate", _FIXED.size
    if version >= 2:
        if not 1 <= raw[pos] <= len(KINDS):
            raise _Malformed("unknown kind")
        kind, pos = KINDS[raw[pos] - 1], pos + 1
    strings: list[str] = []
    for _ in range(3 if version == 1 else 4):
        if pos >= len(raw):
            raise _Malformed("claims end early")
        end = pos + 1 + raw[pos]
        if end > len(raw):
            raise _Malformed("claims end early")
        try:
            strings.append(raw[pos + 1 : end].decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise _Malformed("claims are not UTF-8") from exc
        pos = end
    if pos != len(raw):
        raise _Malformed("trailing bytes after the claims")
    return Claims(
        code=code_from_bytes(code),
        subject_type=SUBJECT_TYPES[subject - 1],
        subject_code=strings[0],
        grade=strings[1],
        rule_pack=strings[2],
        tested_on=_EPOCH + timedelta(days=tested),
        valid_until=_EPOCH + timedelta(days=valid),
        kind=kind,
        iss=strings[3] if version >= 2 else "",
    )


# --- tokens ----------------------------------------------------------------------------------


def sign_claims(claims: Claims, keyring: KeyRing) -> str:
    """The compact token for a certificate's second QR code."""
    key = keyring.current
    body = bytes([TOKEN_VERSION]) + key.kid_bytes + encode_claims(claims)
    token = crockford_b32encode(body + key.sign(body))
    if len(token) > MAX_TOKEN_CHARS:
        raise ValueError(f"the claims make a token longer than {MAX_TOKEN_CHARS} characters")
    return token


def _malformed(reason: str) -> Problem:
    return Problem(400, "malformed", "This is not a fieldsvc certificate token.", reason=reason)


def _unknown_key(kid: bytes) -> Problem:
    return Problem(
        422,
        "unknown_issuer_key",
        "The token was signed by a key this service does not know.",
        key_id=crockford_b32encode(kid),
    )


def _bad_signature(kid: str) -> Problem:
    return Problem(422, "invalid_signature", "The token's signature does not match its content.", key_id=kid)


def verify_token(token: str, keyring: KeyRing) -> VerifiedToken:
    """Check a scanned token; raises Problem (malformed / unknown_issuer_key / invalid_signature)."""
    if not isinstance(token, str):
        raise _malformed("not text")
    if len(token) > MAX_TOKEN_CHARS:
        raise _malformed(f"longer than {MAX_TOKEN_CHARS} characters")
    text = token.strip()
    raw = crockford_b32decode(text.upper()) if text.isascii() else None
    if raw is None:
        raise _malformed("not Crockford Base32")
    if len(raw) < _MIN_TOKEN_BYTES:
        raise _malformed("too short")
    if raw[0] not in TOKEN_VERSIONS:
        raise _malformed("unknown token version")
    key = keyring.find(raw[1 : 1 + KID_BYTES])
    if key is None:
        raise _unknown_key(raw[1 : 1 + KID_BYTES])
    body, signature = raw[:-SIGNATURE_BYTES], raw[-SIGNATURE_BYTES:]
    try:
        key.public_key.verify(signature, body)
    except InvalidSignature:
        raise _bad_signature(key.kid) from None
    try:
        claims = decode_claims(body[1 + KID_BYTES :], raw[0])
    except ValueError as exc:
        raise _malformed(str(exc)) from None
    return VerifiedToken(claims=claims, kid=key.kid, key_status=keyring.status(key))


def sign_bytes(data: bytes, keyring: KeyRing) -> tuple[str, bytes]:
    """Sign arbitrary bytes with the current key: ``(kid, 64-byte signature)``."""
    key = keyring.current
    return key.kid, key.sign(data)


def verify_bytes(data: bytes, signature: bytes, kid: str, keyring: KeyRing) -> SigningKey:
    """Check :func:`sign_bytes` output; raises the same Problems as :func:`verify_token`."""
    kid_raw = crockford_b32decode(kid) if isinstance(kid, str) else None
    if kid_raw is None or len(kid_raw) != KID_BYTES:
        raise _malformed("not a key id")
    key = keyring.find(kid_raw)
    if key is None:
        raise _unknown_key(kid_raw)
    try:
        key.public_key.verify(signature, data)
    except (InvalidSignature, TypeError, ValueError):
        raise _bad_signature(key.kid) from None
    return key


def public_keys_document(keyring: KeyRing, issuer: dict[str, Any] | None = None,
                         issuers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Body of ``/.well-known/fieldsvc-keys.json``: every key that verifies, no private parts.

    ``issuer`` is the identity that signs now (its ``iss`` is in new tokens' claims); ``issuers``
    every version of it, so an old token's ``iss`` can be looked up too.
    """
    return {
        "issuer": issuer,
        "issuers": issuers or [],
        "keys": [
            {
                "kid": key.kid,
                "alg": "Ed25519",
                "public_key": base64.urlsafe_b64encode(key.public_raw).rstrip(b"=").decode("ascii"),
                "status": keyring.status(key),
                "created_at": _iso(key.created_at),
            }
            for key in keyring.keys
        ]
    }
