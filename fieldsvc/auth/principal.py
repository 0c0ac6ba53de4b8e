"""Who is calling: a user, or a device acting as its sampler. No Flask import."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import forbidden, not_found


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
        return self.role == "admin" or self.county_code is None or self.county_code == county_code

    def require_county(self, county_code: str | None, entity: str, key: str) -> None:
        """A county-scoped account sees other counties' entities as absent."""
        if not self.can_see_county(county_code):
            raise not_found(entity, key)

    def require_role(self, *roles: str) -> None:
        if self.role not in roles:
            raise forbidden(f"This needs one of the roles: {', '.join(roles)}.")


SYSTEM = Actor(user_id=0, username="system", role="admin")
