"""Device-side sync client for fieldsvc: offline outbox, batched idempotent push, resumable media, pull.

Standard library only (no fieldsvc import): it runs on a phone or a laptop. See README.md.
"""

from .client import SyncClient, SyncReport, parse_provisioning
from .http import AuthError, RetryPolicy, SyncError, TransientError, Transport

__all__ = ["AuthError", "RetryPolicy", "SyncClient", "SyncError", "SyncReport", "TransientError", "Transport",
           "parse_provisioning"]
__version__ = "0.1.0"
