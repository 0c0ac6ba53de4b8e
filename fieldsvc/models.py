"""Imports every model so that Alembic and SQLAlchemy see the whole schema."""

from .audit.models import AuditEvent, EntityVersion
from .auth.models import ApiToken, RateLimitWindow, User
from .devices.models import Device, DeviceAssignment
from .lab.models import Approval, LabImport, LabResult, LabSampleAlias, ReferenceMaterial
from .media.models import MediaBlob, SampleMedia  # noqa: F401  (sync server)
from .places.models import FarmPark, Parcel, Region
from .samples.models import Sample
from .sequence import SequenceCounter
from .sync.models import IdempotentPush, SyncConflict, SyncMeta  # noqa: F401  (sync server)

__all__ = ["ApiToken", "Approval", "AuditEvent", "Device", "DeviceAssignment", "EntityVersion", "FarmPark",
           "LabImport", "LabResult", "LabSampleAlias", "Parcel", "ReferenceMaterial",
           "RateLimitWindow", "Region", "Sample", "SequenceCounter", "User"]
