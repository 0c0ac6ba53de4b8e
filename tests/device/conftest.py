"""A real fieldsvc server on loopback for the device client, and a fault-injecting TCP proxy.

The server is the real app (SQLite in a tmp instance folder, migrated once per session with
``flask_migrate.upgrade`` and copied per test), served by werkzeug in a thread, or as a
subprocess (``flask run``) when a test needs to SIGKILL it. The proxy sits between client and
server and can cut a request after N bytes, drop or cut a response, answer by itself, or
call back (to kill the server) at a chosen point of a chosen connection.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER_CONFIG = {
    "TESTING": False,
    "PASSWORD_HASH_PROFILE": "CHEAPEST",
    "DEMO": False,
    "PUBLIC_BASE_URL": "http://127.0.0.1",
    "SECRET_KEY": "device-test-secret",
    "LOG_LEVEL": "WARNING",
}


def _config(db_path: Path, instance: Path, **extra: Any) -> dict[str, Any]:
    return {**SERVER_CONFIG, "DATABASE_URL": f"sqlite:///{db_path}", "INSTANCE_PATH": str(instance), **extra}


@pytest.fixture(scope="session")
def device_db_template(tmp_path_factory, small_county):
    """A migrated SQLite database with the small county, a sampler and an official: built once."""
    from flask_migrate import upgrade

    from fieldsvc import create_app
    from fieldsvc.auth.services import create_user
    from fieldsvc.demo import load_places
    from fieldsvc.extensions import db

    root = tmp_path_factory.mktemp("device-template")
    path = root / "fieldsvc.db"
    app = create_app(_config(path, root / "instance"))
    with app.app_context():
        upgrade()
        load_places(small_county)
        create_user("fieldhand", "pw-fieldhand-secret", "sampler", county_code=small_county.county,
                    config=app.config, actor="test")
        create_user("chief", "pw-chief-secret", "official", county_code=small_county.county, config=app.config,
                    actor="test")
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return path


@dataclass
class Server:
    """A prepared database with a registered device; serve it in a thread or a subprocess."""

    db_path: Path
    instance: Path
    county: Any
    villages: list[str]
    token: str
    device_id: str
    provisioning: str
    extra: dict[str, Any]
    url: str = ""
    app: Any = None
    _httpd: Any = None
    _thread: threading.Thread | None = None
    proc: subprocess.Popen | None = None
    port: int = 0

    # -- in-process ---------------------------------------------------------------------------

    def start_thread(self) -> Server:
        from werkzeug.serving import make_server

        from fieldsvc import create_app

        self.app = create_app(_config(self.db_path, self.instance, **self.extra))
        self._httpd = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.port = self._httpd.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def query(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn(db.session)`` against the server's database."""
        from fieldsvc import create_app
        from fieldsvc.extensions import db

        app = self.app or create_app(_config(self.db_path, self.instance, **self.extra))
        with app.app_context():
            try:
                return fn(db.session)
            finally:
                db.session.remove()
                if app is not self.app:
                    db.engine.dispose()

    # -- subprocess ---------------------------------------------------------------------------

    def start_process(self, port: int | None = None, app_target: str = "app",
                      extra_env: dict[str, str] | None = None) -> Server:
        """``flask --app <app_target> run`` on ``port``; ``extra_env`` adds variables (a test's crash points)."""
        self.port = port or free_port()
        env = {**os.environ, "FIELDSVC_DATABASE_URL": f"sqlite:///{self.db_path}",
               "FIELDSVC_INSTANCE_PATH": str(self.instance), "FIELDSVC_DEMO": "0",
               "FIELDSVC_SECRET_KEY": SERVER_CONFIG["SECRET_KEY"], "FIELDSVC_LOG_LEVEL": "WARNING",
               "FIELDSVC_PASSWORD_HASH_PROFILE": "CHEAPEST"}
        env.update({f"FIELDSVC_{k}": str(v) for k, v in self.extra.items()})
        env.update(extra_env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", app_target, "run", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-reload", "--no-debugger"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the fieldsvc subprocess did not start")

    def kill_process(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)
            self._httpd = None
            from fieldsvc.extensions import db

            with self.app.app_context():
                db.engine.dispose()
        self.kill_process()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_server(template: Path, tmp_path: Path, county: Any, **extra: Any) -> Server:
    """Copy the template, register a device for two villages, return the unstarted server."""
    from fieldsvc import create_app
    from fieldsvc.auth.principal import SYSTEM
    from fieldsvc.devices.services import provisioning_text, register_device
    from fieldsvc.extensions import db

    tmp_path.mkdir(parents=True, exist_ok=True)
    db_path = tmp_path / "server.db"
    shutil.copyfile(template, db_path)
    instance = tmp_path / "instance"
    villages = [r["code"] for r in county.regions if r["level"] == "village"][:2]
    app = create_app(_config(db_path, instance))
    with app.app_context():
        reg = register_device({"name": "Test phone", "user": "fieldhand", "villages": villages, "parcels": []},
                              SYSTEM)
        db.session.commit()
        token, device_id = reg.token, reg.device.device_id
        text = provisioning_text("http://127.0.0.1:0", reg.device, token)
        db.session.remove()
        db.engine.dispose()
    return Server(db_path, instance, county, villages, token, device_id, text, dict(extra))


@pytest.fixture
def make_server(device_db_template, small_county, tmp_path):
    """``make_server(**config)`` → a started in-thread Server (stopped after the test)."""
    started: list[Server] = []

    def make(start: bool = True, **extra: Any) -> Server:
        server = prepare_server(device_db_template, tmp_path / f"s{len(started)}", small_county, **extra)
        started.append(server)
        return server.start_thread() if start else server

    yield make
    for server in started:
        server.stop()


# --- the proxy ----------------------------------------------------------------------------------


@dataclass
class Fault:
    """What to do to the ``on``-th connections (1-based) whose request line contains ``match``.

    Only connections that reached the server count (not those refused while it is down).

    kinds: ``cut_request`` (forward ``after`` request bytes, then cut), ``drop_response`` (the
    server answers, the client never hears), ``cut_response`` (forward ``after`` response
    bytes, then cut), ``respond`` (answer ``raw`` without asking the server). ``callback``
    runs at the cut (before the sockets close), e.g. to SIGKILL the server.
    """

    match: bytes
    kind: str
    on: set[int]
    after: int = 0
    raw: bytes = b""
    callback: Callable[[], None] | None = None
    seen: int = 0
    fired: int = 0


@dataclass
class Conn:
    request_line: bytes
    head: bytes = field(repr=False)
    up: int = 0
    down: int = 0
    fault: str | None = None

    def header(self, name: str) -> str | None:
        m = re.search(rb"\r\n" + re.escape(name.encode()) + rb":\s*([^\r\n]*)", self.head, re.IGNORECASE)
        return m.group(1).decode() if m else None


class Proxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.faults: list[Fault] = []
        self.conns: list[Conn] = []
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._state: dict[int | None, Any] = {}
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._closed = threading.Event()
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def add(self, match: bytes, kind: str, on: set[int] | int = 1, **kw: Any) -> Fault:
        fault = Fault(match, kind, {on} if isinstance(on, int) else set(on), **kw)
        with self._lock:
            self.faults.append(fault)
        return fault

    def matching(self, match: bytes) -> list[Conn]:
        with self._lock:
            return [c for c in self.conns if match in c.request_line]

    def bytes_up(self, match: bytes) -> int:
        return sum(c.up for c in self.matching(match))

    def close(self) -> None:
        self._closed.set()
        self._accepting.join(timeout=5)
        self._listener.close()
        for t in list(self._threads):
            t.join(timeout=10)
            if t.is_alive():
                import sys
                import traceback

                frames = sys._current_frames()
                stacks = {th.name: "".join(traceback.format_stack(frames[th.ident])) for th in threading.enumerate()
                          if th.ident in frames and th.name.startswith("Thread")}
                raise AssertionError(f"a proxy connection thread hung: {self._state.get(t.ident)}\n{stacks}")

    # -- internals ----------------------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(30)
            t = threading.Thread(target=self._handle, args=(client,), daemon=True)
            with self._lock:
                self._threads.append(t)
            t.start()

    def _pick(self, line: bytes) -> Fault | None:
        chosen = None
        for f in self.faults:
            if f.match in line:
                f.seen += 1
                if chosen is None and f.seen in f.on:
                    f.fired += 1
                    chosen = f
        return chosen

    def _handle(self, client: socket.socket) -> None:
        upstream = None
        try:
            client.settimeout(30)
            first = b""
            while b"\r\n" not in first:
                chunk = client.recv(65536)
                if not chunk:
                    return
                first += chunk
            line = first.split(b"\r\n", 1)[0]
            self._state[threading.get_ident()] = ("connecting", line)
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30)
            except OSError:  # server down: the client sees the connection close; not counted for faults
                with self._lock:
                    self.conns.append(Conn(line, first, fault="server_down"))
                return
            with self._lock:
                fault = self._pick(line)
                conn = Conn(line, first, fault=fault.kind if fault else None)
                self.conns.append(conn)
            if fault is not None and fault.kind == "respond":
                client.sendall(fault.raw)
                return
            self._state[threading.get_ident()] = conn
            down = threading.Thread(target=self._pump_down, args=(upstream, client, conn, fault), daemon=True)
            down.start()
            self._pump_up(client, upstream, conn, fault, first)
            down.join(timeout=60)
        except OSError:
            pass
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    _kill(sock)
                    sock.close()

    def _pump_up(self, client, upstream, conn: Conn, fault: Fault | None, first: bytes) -> None:
        data = first
        try:
            while data:
                if fault is not None and fault.kind == "cut_request" and conn.up + len(data) >= fault.after:
                    upstream.sendall(data[: fault.after - conn.up])
                    conn.up = fault.after
                    time.sleep(0.05)  # let the server read what arrived before the cut
                    if fault.callback:
                        fault.callback()
                    _kill(upstream)
                    _kill(client)
                    return
                upstream.sendall(data)
                conn.up += len(data)
                data = client.recv(65536)
            upstream.shutdown(socket.SHUT_WR)
        except OSError:  # a reset either way: wake the other pump
            _kill(client)
            _kill(upstream)

    def _pump_down(self, upstream, client, conn: Conn, fault: Fault | None) -> None:
        try:
            while True:
                data = upstream.recv(65536)
                if not data:
                    client.shutdown(socket.SHUT_WR)
                    return
                if fault is not None and fault.kind == "drop_response":
                    if fault.callback:
                        fault.callback()
                    _kill(client)
                    _kill(upstream)
                    return
                if fault is not None and fault.kind == "cut_response" and conn.down + len(data) >= fault.after:
                    client.sendall(data[: fault.after - conn.down])
                    conn.down = fault.after
                    _kill(client)
                    _kill(upstream)
                    return
                client.sendall(data)
                conn.down += len(data)
        except OSError:  # a reset either way: wake the other pump
            _kill(client)
            _kill(upstream)


def _kill(sock: socket.socket) -> None:
    """Shut both directions; this wakes the other pump. Only ``_handle`` closes, after both pumps end
    (closing under a thread blocked in ``recv`` could hand its fd number to a new socket)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


@pytest.fixture
def make_proxy():
    proxies: list[Proxy] = []

    def make(upstream_port: int) -> Proxy:
        proxy = Proxy(upstream_port)
        proxies.append(proxy)
        return proxy

    yield make
    for p in proxies:
        p.close()


@dataclass
class FastSleep:
    """Records the waits the client asked for and sleeps only a little (tests stay fast)."""

    waits: list[float] = field(default_factory=list)
    scale: float = 0.0

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.scale:
            time.sleep(seconds * self.scale)
