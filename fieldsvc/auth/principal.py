"""Who is calling: a user, or a device acting as its sampler. No Flask import."""

from __future__ import annotations

from dataclasses import dataclass

from ..access import may_see_county, require_county
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

    def can_see_county(self, county_code: str | None) -> bool:
        """``access.may_see_county`` (the one spelling of the rule)."""
        return may_see_county(self, county_code)

    def require_county(self, county_code: str | None, entity: str, key: str) -> None:
        """``access.require_county``: another county's entity is absent (404)."""
        require_county(self, county_code, entity, key)

    def require_role(self, *roles: str) -> None:
        if self.role not in roles:
            raise forbidden(f"This needs one of the roles: {', '.join(roles)}.")


SYSTEM = Actor(user_id=0, username="system", role="admin")
