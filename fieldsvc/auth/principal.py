"""Who is calling: a user, or a device acting as its sampler. No Flask import.

What the caller may see is ``fieldsvc.access``, the one place that rule is written."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import forbidden


@dataclass(frozen=True)
class Actor:
    user_id: int
    username: str
    role: str
    county_code: str | None = None
    device_pk: int | None = None
    device_id: str | None = None

    @property
    def label(self) -> str:
        """How the audit log names this actor (never a token)."""
        if self.device_id:
            return f"device:{self.device_id}"
        return f"user:{self.username}"

    def require_role(self, *roles: str) -> None:
        if self.role not in roles:
            raise forbidden(f"This needs one of the roles: {', '.join(roles)}.")


SYSTEM = Actor(user_id=0, username="system", role="admin")
