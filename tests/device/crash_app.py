"""The real app, for a server subprocess that SIGKILLs itself right after publishing a photo's
file and before the request commits: the window in which a crash used to strand a sample
``awaiting_media`` (issue 19). Test-only: ``flask --app tests.device.crash_app run``.

``CRASH_AFTER_PUBLISH`` lists which publications (1-based, counted across restarts in the file
``CRASH_COUNTER``) end the process.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from fieldsvc import create_app
from fieldsvc.media.storage import FileStorage

_finish = FileStorage.finish
_CRASH_AT = {int(n) for n in os.environ.get("CRASH_AFTER_PUBLISH", "").split(",") if n}
_COUNTER = Path(os.environ.get("CRASH_COUNTER", "/nonexistent"))


def _finish_then_maybe_die(self: FileStorage, sha256: str, size: int) -> bool:
    published = _finish(self, sha256, size)
    if published and _CRASH_AT:
        n = int(_COUNTER.read_text() or 0) + 1 if _COUNTER.exists() else 1
        _COUNTER.write_text(str(n))
        if n in _CRASH_AT:
            os.kill(os.getpid(), signal.SIGKILL)  # the file is published, the blob row not committed
    return published


FileStorage.finish = _finish_then_maybe_die
app = create_app()
