"""CLI: ``python -m offline_sync --data DIR init|add-sample|sync|status|conflicts``.

The token is read from ``--token``, ``--token-file``, ``FIELDSVC_DEVICE_TOKEN`` or the
provisioning text, stored in ``outbox.db`` (mode 0600) and never printed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from .client import SyncClient, data_dir_default, parse_provisioning, summary
from .http import SyncError

COLUMNS = ("id", "code", "parcel", "status", "server_version", "server_state", "reason")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m offline_sync", description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=None,
                   help="data dir (default $OFFLINE_SYNC_DATA or ./offline-sync-data)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    init = sub.add_parser("init", help="connect this data dir to a server")
    init.add_argument("--server")
    init.add_argument("--token", help="device token (prefer --token-file or FIELDSVC_DEVICE_TOKEN)")
    init.add_argument("--token-file", type=Path)
    init.add_argument("--device-id")
    init.add_argument("--provision", help="the provisioning QR text <base>/field/#server=...&device=...&token=...")

    add = sub.add_parser("add-sample", help="record a sample offline")
    add.add_argument("--parcel", required=True)
    add.add_argument("--code", required=True, help="bag barcode")
    add.add_argument("--lat", type=float, required=True)
    add.add_argument("--lon", type=float, required=True)
    add.add_argument("--accuracy", type=float, default=None, help="GPS accuracy in metres")
    add.add_argument("--depth-top", type=float, required=True)
    add.add_argument("--depth-bottom", type=float, required=True)
    add.add_argument("--sample-type", default="composite")
    add.add_argument("--land-use", default=None)
    add.add_argument("--note", default=None)
    add.add_argument("--mock", action="store_true", help="the fix came from a mock location provider")
    add.add_argument("--collected-at", default=None, help="RFC 3339; default: now on this device's clock")
    add.add_argument("--photo", action="append", default=[], nargs="+", help="photo file(s)")

    sync = sub.add_parser("sync", help="push, upload media, pull")
    sync.add_argument("--no-pull", action="store_true")
    sub.add_parser("status", help="per-record table")
    sub.add_parser("conflicts", help="records the server kept as conflicts")
    sub.add_parser("planned", help="planned points still to sample, in rank order")
    return p


def _table(rows: list[dict[str, Any]], out) -> None:
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in COLUMNS] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(COLUMNS)]
    print("  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True)), file=out)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)), file=out)


def _init(client: SyncClient, args: argparse.Namespace) -> str:
    if args.provision:
        values = parse_provisioning(args.provision)
        server, token, device = values["server"], values["token"], values["device"] or args.device_id
    else:
        server, device = args.server, args.device_id
        token = args.token
        if token is None and args.token_file:
            token = args.token_file.read_text().strip()
        token = token or os.environ.get("FIELDSVC_DEVICE_TOKEN")
    if not server or not token:
        raise SyncError("init needs --provision TEXT, or --server URL with a token")
    client.init(server, token, device)
    return f"initialised for {server}" + (f" as device {device}" if device else "")


def main(argv: list[str] | None = None, out=None) -> int:
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(message)s")
    data = args.data or data_dir_default()
    try:
        with SyncClient(data) as client:
            if args.command == "init":
                print(_init(client, args), file=out)
            elif args.command == "add-sample":
                photos = [p for group in args.photo for p in group]
                rid = client.add_sample(parcel=args.parcel, code=args.code, lat=args.lat, lon=args.lon,
                                        accuracy_m=args.accuracy, depth_top_cm=args.depth_top,
                                        depth_bottom_cm=args.depth_bottom, photos=photos,
                                        sample_type=args.sample_type, land_use_observed=args.land_use,
                                        note=args.note, mock=args.mock, collected_at=args.collected_at)
                print(rid, file=out)
            elif args.command == "sync":
                report = client.sync(do_pull=not args.no_pull)
                print(json.dumps(report.as_dict(), ensure_ascii=False), file=out)
                print(json.dumps(summary(client.status())), file=out)
                return 0 if report.error is None else 2
            elif args.command == "status":
                _table(client.status(), out)
                print(json.dumps(summary(client.status())), file=out)
            elif args.command == "conflicts":
                for row in client.conflicts():
                    print(json.dumps(row, ensure_ascii=False), file=out)
            elif args.command == "planned":
                for row in client.planned():
                    print(json.dumps(row, ensure_ascii=False), file=out)
    except (SyncError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
