"""Imports every model so that Alembic and SQLAlchemy see the whole schema."""

from .audit.models import AuditEvent, EntityVersion
from .auth.models import ApiToken, RateLimitWindow, User
from .devices.models import Device, DeviceAssignment
from .places.models import FarmPark, Parcel, Region
from .samples.models import Sample
from .sequence import SequenceCounter

__all__ = ["ApiToken", "AuditEvent", "Device", "DeviceAssignment", "EntityVersion", "FarmPark", "Parcel",
           "RateLimitWindow", "Region", "Sample", "SequenceCounter", "User"]
