"""Load the demo county through the same services the API uses, so the demo exercises real rules."""

from __future__ import annotations

from typing import Any, Callable

from flask import current_app
from sqlalchemy import func, select

from .auth.principal import SYSTEM
from .auth.services import create_user, get_user_by_username
from .devices.services import register_device
from .extensions import db
from .places import services as places
from .places.demo_data import DemoCounty, generate_county
from .places.models import Region

# Demo accounts for trying the API locally; README says to remove them for real use.
DEMO_PASSWORD = "demo-password"
DEMO_USERS = (("admin", "admin"), ("official", "official"), ("lab", "lab"), ("sampler", "sampler"))


def load_demo(*, parcels: int = 20_000, seed: int = 391, if_empty: bool = False,
              echo: Callable[[str], Any] = print) -> dict[str, Any]:
    """Regions, farm parks, parcels, one account per role and one device; commits once."""
    if if_empty and db.session.scalar(select(func.count()).select_from(Region).where(Region.level == "county")):
        echo("a county is already loaded; skipping the demo")
        return {}
    county = generate_county(seed=seed, parcels=parcels)
    echo(f"demo county {county.county}: {len(county.regions)} regions, {len(county.parcels)} parcels")
    result = load_places(county)
    _demo_accounts(county.county)
    villages = [r["code"] for r in county.regions if r["level"] == "village"][:3]
    device = register_device({"name": "Demo phone", "user": "sampler", "villages": villages, "parcels": []},
                             SYSTEM)
    db.session.commit()
    summary = county.summary()
    summary.update(imported_parcels=result.count, demo_device=device.device.device_id,
                   demo_device_token=device.token, accounts=[u for u, _ in DEMO_USERS],
                   password=DEMO_PASSWORD)
    return summary


def load_places(county: DemoCounty) -> places.ImportResult:
    """Regions (parents first), farm parks and parcels; flushes, the caller commits."""
    for level in ("county", "township", "village"):
        for region in county.regions:
            if region["level"] == level:
                places.create_region(region, SYSTEM)
    for park in county.farm_parks:
        places.create_farm_park(park, SYSTEM)
    return places.import_parcels(county.feature_collection(), SYSTEM, max_features=len(county.parcels))


def _demo_accounts(county_code: str) -> None:
    for username, role in DEMO_USERS:
        if get_user_by_username(username) is None:
            create_user(username, DEMO_PASSWORD, role, county_code=None if role == "admin" else county_code,
                        config=current_app.config, actor="demo")
