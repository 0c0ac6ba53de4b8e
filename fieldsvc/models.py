"""Imports every model so that Alembic and SQLAlchemy see the whole schema."""

from .audit.models import AuditEvent, EntityVersion
from .auth.models import ApiToken, RateLimitWindow, User
from .certificates.models import Certificate, CertificateScan
from .devices.models import Device, DeviceAssignment
from .grading.models import Grade, GradingRun, RollupMember, RollupSum, RulePackVerification
from .grading.plan_models import PlannedPoint, SamplingPlan
from .lab.models import Approval, LabImport, LabResult, LabSampleAlias, ReferenceMaterial
from .media.models import MediaBlob, SampleMedia
from .openrosa.models import FormExtension, OpenRosaSubmission
from .places.models import FarmPark, Parcel, Region
from .samples.models import Sample, SyncConflict
from .sequence import SequenceCounter
from .sync.models import IdempotentPush, SyncMeta
from .tiles.models import AreaOutline, CachedTile

__all__ = [
    "ApiToken", "Approval", "AreaOutline", "AuditEvent", "Certificate", "CertificateScan", "Device", "DeviceAssignment",
    "EntityVersion", "FarmPark", "FormExtension", "Grade", "GradingRun", "IdempotentPush", "LabImport",
    "LabResult", "LabSampleAlias", "MediaBlob", "OpenRosaSubmission", "Parcel", "PlannedPoint", "RateLimitWindow",
    "ReferenceMaterial", "Region", "RollupMember", "RollupSum", "RulePackVerification", "Sample", "SampleMedia",
    "SamplingPlan",
    "SequenceCounter", "SyncConflict", "SyncMeta",
    "CachedTile", "User",
]
