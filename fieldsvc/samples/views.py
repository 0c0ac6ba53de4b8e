"""Sample reads (DESIGN §4.4): the pushed data names plus id, version, state, flags, times."""

from __future__ import annotations

from flask import Blueprint

from ..dbtypes import isoformat, utcnow
from ..http import ALL_ROLES, current_actor, json_body, load, query_args, requires_role
from ..openapi import doc
from ..openrosa.services import sample_extra
from ..schemas import page_limit
from . import services
from .schemas import MoveToParcelIn, SampleArgs

bp = Blueprint("samples", __name__, url_prefix="/api/v1/samples")


@bp.get("")
@requires_role(*ALL_ROLES)
@doc(query=SampleArgs)
def list_samples():
    """Samples by parcel and state (a held sample past its TTL reads as needs_review)."""
    args = query_args(SampleArgs())
    return services.list_samples(args, current_actor(), page_limit(args), utcnow()).to_dict()


@bp.get("/<sample_id>")
@requires_role(*ALL_ROLES)
def get_sample(sample_id: str):
    """One sample; with ``extra`` (and ``extension_version``) when it has answers to the form's
    custom questions (DESIGN §4.3), as a pull carries it. A sample that Collect sent before answers
    were kept with the sample reads its answers from the instance that brought them."""
    sample = services.get_sample_by_id(sample_id, current_actor())
    body = services.sample_dict(sample)
    if "extra" not in body and (extra := sample_extra(sample.id)):
        body["extra"] = extra
    return body


@bp.get("/<sample_id>/versions")
@requires_role(*ALL_ROLES)
def sample_versions(sample_id: str):
    """Every version of a sample, oldest first (deleted ones too)."""
    sample = services.get_sample_by_id(sample_id, current_actor())
    return {"items": [{"version": v.version, "deleted": v.deleted, "actor": v.actor,
                       "created_at": isoformat(v.created_at), "data": v.data}
                      for v in services.versions(sample)], "next_cursor": None}


@bp.post("/<sample_id>/parcel")
@requires_role("official")
@doc(body=MoveToParcelIn, responses={200: "The sample, new version", 409: "not_held",
                                     422: "validation_failed: no such parcel"})
def move_to_parcel(sample_id: str):
    """Put a held sample on the parcel it was really taken on (a mistyped code); a new version."""
    actor = current_actor()
    body = load(MoveToParcelIn(), json_body())
    sample = services.move_to_parcel(services.get_sample_by_id(sample_id, actor, for_update=True), body["parcel"],
                                    actor)
    return services.sample_dict(sample)
