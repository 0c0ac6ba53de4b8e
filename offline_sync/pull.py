"""Pull: walk the server's change sequence from the persisted cursor (DESIGN §4.2).

Each page is applied together with its cursor in one local transaction, so a pull cut off
between pages resumes after the last applied page and a pull cut off inside a page simply
asks for that page again (applying a change twice is harmless: upserts and deletes by id).
A 410 ``cursor_expired`` means the server cannot continue from our cursor (a restored or
rebuilt database): forget what was pulled and start again from nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlencode

from .http import HttpError, Transport
from .outbox import Outbox

log = logging.getLogger("offline_sync")


@dataclass
class PullResult:
    pages: int = 0
    changes: int = 0
    resets: int = 0


def pull(transport: Transport, outbox: Outbox, limit: int = 500, max_resets: int = 2) -> PullResult:
    result = PullResult()
    while True:
        params = {"limit": str(limit)}
        cursor = outbox.get("pull_cursor")
        if cursor:
            params["cursor"] = cursor
        resp = transport.request("GET", "/api/v1/sync/pull?" + urlencode(params))
        if resp.status == 410 and result.resets < max_resets:
            log.warning("pull cursor expired (%s); resyncing from scratch", resp.code)
            outbox.reset_pulled()
            result.resets += 1
            continue
        if resp.status != 200:
            raise HttpError(resp)
        body = resp.json()
        result.changes += outbox.apply_changes(body.get("changes") or [], body["cursor"])
        result.pages += 1
        if not body.get("has_more"):
            return result
