"""Sample reads (DESIGN §4.4): the pushed data names plus id, version, state, flags, times."""

from __future__ import annotations

from flask import Blueprint
from sqlalchemy import select

from ..dbtypes import isoformat, utcnow
from ..http import ALL_ROLES, current_actor, paginate, query_args, requires_role
from ..openapi import doc
from ..schemas import page_limit
from . import services
from .models import Sample
from .schemas import SampleArgs

bp = Blueprint("samples", __name__, url_prefix="/api/v1/samples")


@bp.get("")
@requires_role(*ALL_ROLES)
@doc(query=SampleArgs)
def list_samples():
    """Samples by parcel and state (a held sample past its TTL reads as needs_review)."""
    args = query_args(SampleArgs())
    now = utcnow()
    stmt = select(Sample).where(*services.sample_filter(args, current_actor(), now))
    rows, cursor = paginate(stmt, Sample.seq, page_limit(args), args["cursor"])
    return {"items": [services.sample_dict(s, now) for s in rows], "next_cursor": cursor}


@bp.get("/<sample_id>")
@requires_role(*ALL_ROLES)
def get_sample(sample_id: str):
    """One sample."""
    return services.sample_dict(services.get_sample_by_id(sample_id, current_actor()))


@bp.get("/<sample_id>/versions")
@requires_role(*ALL_ROLES)
def sample_versions(sample_id: str):
    """Every version of a sample, oldest first (deleted ones too)."""
    sample = services.get_sample_by_id(sample_id, current_actor())
    return {"items": [{"version": v.version, "deleted": v.deleted, "actor": v.actor,
                       "created_at": isoformat(v.created_at), "data": v.data}
                      for v in services.versions(sample)], "next_cursor": None}
