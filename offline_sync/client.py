"""The sync client: create samples offline, push them in batches, upload media, pull changes.

Push rules (DESIGN §4.2, ANCHORS part 1 lessons 2, 5, 6):
- every sample gets a time-ordered UUID (v7, ``ids.py``) at creation; it never changes;
- batches follow the server's advertised ``max_batch_records`` and ``max_request_bytes``;
- each batch is stored (key, exact body, records) *before* it is sent, and re-sent verbatim
  with the same ``Idempotency-Key`` until an answer arrives, so a lost response never
  duplicates anything;
- the server judges each record alone; a rejected record is marked and the queue moves on;
- a batch the server refuses as a whole (an envelope 4xx) is split until the culprit is alone,
  then that record is rejected; 401/403 stop the sync without touching the queue.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .http import AuthError, HttpError, RetryPolicy, SyncError, TransientError, Transport
from .ids import new_sample_id
from .media import MediaRejected, store_file, upload
from .outbox import Outbox, dumps
from .pull import PullResult, pull

log = logging.getLogger("offline_sync")

DEFAULT_CONFIG = {"max_batch_records": 100, "max_request_bytes": 1024 * 1024, "preferred_chunk_bytes": 256 * 1024,
                  "max_page_size": 500}
ENVELOPE_SLACK = 512  # bytes for the envelope around the records
SIZE_MARGIN = 0.9  # stay under 90 % of the advertised request size


@dataclass
class SyncReport:
    pushed_batches: int = 0
    results: dict[str, int] = field(default_factory=dict)
    media_uploaded: int = 0
    media_bytes_sent: int = 0
    media_failed: list[str] = field(default_factory=list)
    pull: PullResult | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "pull"}
        if self.pull is not None:
            out["pull"] = self.pull.__dict__
        return out


def parse_provisioning(text: str) -> dict[str, str]:
    """``<base>/field/#server=...&device=...&token=...`` → ``{"server", "device", "token"}``."""
    fragment = urlsplit(text.strip()).fragment
    values: dict[str, str] = {}
    for part in fragment.split("&"):
        name, sep, value = part.partition("=")
        if sep:
            values[unquote(name)] = unquote(value)  # not unquote_plus: a token may hold '+'
    missing = [k for k in ("server", "token") if not values.get(k)]
    if missing:
        raise ValueError(f"provisioning text lacks {', '.join(missing)}")
    return {"server": values["server"].rstrip("/"), "device": values.get("device", ""), "token": values["token"]}


def plan_batch(records: list[tuple[str, bytes]], max_records: int, max_bytes: int) -> tuple[list[int], list[int]]:
    """Which of ``records`` (id, encoded record) go in the next batch, and which can never fit alone."""
    chosen: list[int] = []
    too_big: list[int] = []
    size = ENVELOPE_SLACK
    budget = int(max_bytes * SIZE_MARGIN)
    for i, (_rid, encoded) in enumerate(records):
        if ENVELOPE_SLACK + len(encoded) > budget:
            too_big.append(i)
            continue
        if len(chosen) >= max_records or size + len(encoded) + 1 > budget:
            break
        chosen.append(i)
        size += len(encoded) + 1
    return chosen, too_big


class SyncClient:
    """One device's client over a data dir (``outbox.db`` and ``media/``)."""

    def __init__(self, data_dir: str | os.PathLike[str], *, policy: RetryPolicy | None = None,
                 sleep=None, timeout_s: float = 60.0, pull_limit: int | None = None) -> None:
        self.outbox = Outbox(data_dir)
        self.pull_limit = pull_limit
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._timeout = timeout_s
        self._transport: Transport | None = None
        self.config: dict[str, Any] = dict(DEFAULT_CONFIG)
        cached = self.outbox.get("server_config")
        if cached:
            self.config.update(json.loads(cached))

    def close(self) -> None:
        self.outbox.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- setup ------------------------------------------------------------------------------

    def init(self, server: str, token: str, device_id: str | None = None) -> None:
        """Remember the server and token; a different server forgets what was pulled from the old one."""
        Transport(server, token)  # validates the URL
        previous = self.outbox.get("server")
        with self.outbox.tx() as c:
            self.outbox.set("server", server.rstrip("/"), c)
            self.outbox.set("token", token, c)
            self.outbox.set("device_id", device_id or None, c)
        if previous and previous != server.rstrip("/"):
            self.outbox.reset_pulled()
        self._transport = None

    @property
    def transport(self) -> Transport:
        if self._transport is None:
            server, token = self.outbox.get("server"), self.outbox.get("token")
            if not server or not token:
                raise SyncError("not initialised: run `init --server URL --token TOKEN` or `init --provision TEXT`")
            kwargs = {"sleep": self._sleep} if self._sleep is not None else {}
            self._transport = Transport(server, token, timeout_s=self._timeout, policy=self._policy, **kwargs)
        return self._transport

    # -- creating samples -------------------------------------------------------------------

    def add_sample(self, *, parcel: str, code: str, lat: float, lon: float, accuracy_m: float | None,
                   depth_top_cm: float, depth_bottom_cm: float, photos: Iterable[str | os.PathLike[str]] = (),
                   sample_type: str = "composite", land_use_observed: str | None = None, note: str | None = None,
                   mock: bool = False, collected_at: str | None = None, sample_id: str | None = None) -> str:
        """Store a new sample offline: a time-ordered UUID now, photos copied in and hashed now. Returns the id."""
        rid = sample_id or new_sample_id()
        stored = [store_file(p, self.outbox.dir / "media") for p in photos]
        data = {
            "code": code, "parcel": parcel,
            "collected_at": collected_at or datetime.now().astimezone().isoformat(timespec="seconds"),
            "location": {"lat": lat, "lon": lon, "accuracy_m": accuracy_m, "mock": bool(mock)},
            "depth_top_cm": depth_top_cm, "depth_bottom_cm": depth_bottom_cm, "sample_type": sample_type,
            "land_use_observed": land_use_observed, "note": note,
            "media": [{"name": m.name, "sha256": m.sha256, "bytes": m.bytes, "mime": m.mime} for m in stored],
        }
        self.outbox.add_record(rid, data, [m.__dict__ for m in stored])
        return rid

    # -- sync -------------------------------------------------------------------------------

    def refresh_config(self) -> dict[str, Any]:
        body = self.transport.get_json("/api/v1/sync/config")
        keep = {k: body[k] for k in ("max_batch_records", "max_request_bytes", "preferred_chunk_bytes",
                                     "max_page_size", "hold_ttl_s") if isinstance(body.get(k), int)}
        self.config.update(keep)
        self.outbox.set("server_config", dumps(keep))
        return self.config

    def sync(self, *, do_pull: bool = True) -> SyncReport:
        """Push, then media, then pull. Stops at the first transient failure; the next call resumes."""
        report = SyncReport()
        try:
            self.refresh_config()
            self.push(report)
            self.upload_media(report)
            if do_pull:
                report.pull = self.pull()
        except (TransientError, AuthError, HttpError) as exc:
            report.error = str(exc)
        return report

    def push(self, report: SyncReport | None = None) -> SyncReport:
        report = report or SyncReport()
        for batch in self.outbox.open_batches():  # answers we never got: same key, same body
            self._send_batch(batch["key"], batch["body"], json.loads(batch["ids"]), report)
        while True:
            rows = self.outbox.pending(int(self.config["max_batch_records"]) * 2 + 1)
            if not rows:
                return report
            encoded = [(r["id"], self._record_json(r)) for r in rows]
            chosen, too_big = plan_batch(encoded, int(self.config["max_batch_records"]),
                                         int(self.config["max_request_bytes"]))
            for i in too_big:
                self.outbox.reject_locally(encoded[i][0], "payload_too_large",
                                           {"record": [f"larger than the server's {self.config['max_request_bytes']}"
                                                       " byte request limit"]})
            if not chosen:
                continue
            key, body, ids = self._new_batch([encoded[i] for i in chosen])
            self._send_batch(key, body, ids, report)

    def _record_json(self, row) -> bytes:
        record = {"type": row["type"], "id": row["id"], "base_version": row["base_version"],
                  "deleted": bool(row["deleted"]), "data": json.loads(row["data"])}
        return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @staticmethod
    def _head() -> bytes:
        """The batch's opening, stamped with the time of this attempt (the server's skew estimate)."""
        sent_at = datetime.now().astimezone().isoformat(timespec="seconds")
        head = json.dumps({"device_sent_at": sent_at, "schema_version": 1}, separators=(",", ":"))[:-1]
        return (head + ',"records":[').encode()

    def _new_batch(self, encoded: list[tuple[str, bytes]]) -> tuple[str, bytes, list[str]]:
        body = self._head() + b",".join(e for _, e in encoded) + b"]}"
        key, ids = str(uuid.uuid4()), [rid for rid, _ in encoded]
        self.outbox.open_batch(key, body, ids)  # persisted before the first byte goes out
        return key, body, ids

    def _send_batch(self, key: str, body: bytes, ids: list[str], report: SyncReport) -> None:
        self.outbox.touch_batch(key)
        body = self._head() + body.split(b',"records":[', 1)[1]  # same records, this attempt's time
        resp = self.transport.post_json("/api/v1/sync/push", body, {"Idempotency-Key": key})
        if resp.status == 200:
            results = resp.json().get("results") or []
            outcomes = []
            for rid, res in zip(ids, results, strict=False):
                status = res.get("status")
                if status == "rejected" and res.get("retryable"):
                    status = "pending"  # the server asks for this record again later
                outcomes.append({**res, "id": rid, "status": status})
                report.results[status] = report.results.get(status, 0) + 1
            self.outbox.close_batch(key, outcomes)
            report.pushed_batches += 1
            return
        # The server refused the batch as a whole: shrink it until the culprit is alone.
        ids = self.outbox.abandon_batch(key)  # its records are pending again
        if resp.code == "idempotency_key_reused":
            return  # cannot happen with a stored body; the records go again under a new key
        if resp.status not in (400, 409, 413, 415, 422):
            raise HttpError(resp)
        if resp.status == 413:
            self.config["max_request_bytes"] = max(1024, min(int(self.config["max_request_bytes"]), len(body) // 2))
        if len(ids) > 1:
            if resp.status != 413:
                self.config["max_batch_records"] = 1  # for the rest of this sync: find the record at fault
            return
        problem = resp.json() if resp.body else None
        fields = ((problem.get("details") or {}).get("fields") or {}) if isinstance(problem, dict) else {}
        self.outbox.reject_locally(ids[0], resp.code or f"http_{resp.status}", fields)
        report.results["rejected"] = report.results.get("rejected", 0) + 1

    def upload_media(self, report: SyncReport | None = None) -> SyncReport:
        report = report or SyncReport()
        chunk = int(self.config["preferred_chunk_bytes"])
        for m in self.outbox.media_to_upload():
            try:
                sent = upload(self.transport, m["path"], m["sha256"], m["bytes"], chunk,
                              on_progress=lambda off, sha=m["sha256"]: self.outbox.set_media(sha, "uploading", off))
            except MediaRejected as exc:
                self.outbox.set_media(m["sha256"], "failed", 0, exc.code)
                report.media_failed.append(m["sha256"])
                continue
            report.media_bytes_sent += sent
            report.media_uploaded += 1
            self.outbox.set_media(m["sha256"], "done", m["bytes"])
        self.release_media()
        return report

    def release_media(self) -> int:
        """Delete local copies of photos the server holds for samples it stored (a season of photos
        would fill a phone); the outbox keeps their hash, size and ``done``. Returns files removed."""
        removed = 0
        for m in self.outbox.releasable_media():
            path = Path(m["path"])
            if path.is_file() and path.resolve().parent == (self.outbox.dir / "media").resolve():
                path.unlink()
                removed += 1
        return removed

    def pull(self) -> PullResult:
        limit = self.pull_limit or min(500, int(self.config.get("max_page_size") or 500))
        return pull(self.transport, self.outbox, limit=limit)

    # -- reading ----------------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        rows = []
        for r in self.outbox.records():
            data = json.loads(r["data"])
            rows.append({"id": r["id"], "code": data.get("code"), "parcel": data.get("parcel"), "status": r["status"],
                         "server_version": r["server_version"], "server_state": r["server_state"],
                         "reason": r["code"], "errors": json.loads(r["errors"]) if r["errors"] else None,
                         "conflict_id": r["conflict_id"]})
        return rows

    def conflicts(self) -> list[dict[str, Any]]:
        return [r for r in self.status() if r["status"] == "conflict"]

    def planned(self, include_closed: bool = False) -> list[dict[str, Any]]:
        """The planned points the server sent this device (``planned_point`` changes), in rank order:
        the open ones, less those a sample recorded here (not yet synced) already settles."""
        taken = {json.loads(r["data"]).get("parcel") for r in self.outbox.records()}
        rows = [{"id": key, **p} for key, p in self.outbox.pulled("planned_point").items()]
        if not include_closed:
            rows = [p for p in rows if p.get("status") == "open" and p.get("parcel") not in taken]
        return sorted(rows, key=lambda p: (p.get("plan") or 0, p.get("rank") or 0))


def summary(rows: list[Mapping[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows:
        out[r["status"]] = out.get(r["status"], 0) + 1
    return out


def data_dir_default() -> Path:
    return Path(os.environ.get("OFFLINE_SYNC_DATA", "offline-sync-data"))
