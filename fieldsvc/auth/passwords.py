"""Password hashing with Argon2id (argon2-cffi); the profile is configurable for tests."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError


@lru_cache(maxsize=4)
def _hasher(profile: str) -> PasswordHasher:
    params = getattr(profiles, profile.upper(), None)
    if params is None:
        raise ValueError(f"unknown Argon2 profile {profile!r}")
    return PasswordHasher.from_parameters(params)


def hash_password(password: str, profile: str = "RFC_9106_LOW_MEMORY") -> str:
    return _hasher(profile).hash(password)


def verify_password(stored_hash: str, password: str, profile: str = "RFC_9106_LOW_MEMORY") -> bool:
    try:
        return _hasher(profile).verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# Verifying against this keeps a failed login for an unknown user as slow as for a known one.
def dummy_verify(password: str, profile: str = "RFC_9106_LOW_MEMORY") -> None:
    verify_password(_dummy_hash(profile), password, profile)


@lru_cache(maxsize=4)
def _dummy_hash(profile: str) -> str:
    return hash_password("fieldsvc-dummy-password", profile)
