"""Private servers a fault test may stop, restart or starve: a Redis and a PostgreSQL of the test's
own (never the shared ones other tests use), and a small filesystem that fills up."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import unavailable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, up: bool, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not go {'up' if up else 'down'} in {timeout} s")


class PrivateRedis:
    """``redis-server`` on a free port, no persistence: stopping it loses every queued job."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port, up=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None
        _wait_port(self.port, up=False)


@pytest.fixture
def private_redis():
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed (apt-get install redis-server)")
    server = PrivateRedis(binary)
    server.start()
    yield server
    server.stop()


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (``initdb`` into a temporary folder, its own port and
    socket folder), so it can be restarted without touching anyone else's database."""

    def __init__(self, bindir: str) -> None:
        self.bindir = bindir
        self.folder = tempfile.mkdtemp(prefix="groundwork-pg-")
        self.data = os.path.join(self.folder, "data")
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(_as_postgres([os.path.join(self.bindir, tool), *args]), check=True, capture_output=True,
                       timeout=60)

    def _pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", action, "-D", self.data, "-o", options, "-l", os.path.join(self.folder, "log"),
                  "-w", *extra)

    def start(self) -> None:
        self._pg_ctl("start")

    def restart(self) -> None:
        self._pg_ctl("restart", "-m", "fast")

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "-D", self.data, "-m", "immediate", "-w")

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def private_postgres():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        unavailable("initdb is not installed (the postgresql server package)")
    server = PrivatePostgres(os.path.dirname(found[-1]))
    server.start()
    yield server
    try:
        server.stop()
    finally:
        server.remove()


class SmallDisk:
    """Where a version fills the disk: a 4 MB tmpfs of the test's own when this machine lets us mount
    one (``kind == "tmpfs"``: a ballast file fills it, ENOSPC for real); else a plain folder whose
    filling build runs in a process limited by RLIMIT_FSIZE (``kind == "rlimit"``: EFBIG for real)."""

    def __init__(self, folder: Path, kind: str) -> None:
        self.folder, self.kind = folder, kind


@pytest.fixture
def small_disk():
    folder = Path(tempfile.mkdtemp(prefix="groundwork-disk-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)],
                             capture_output=True).returncode == 0
    yield SmallDisk(folder, "tmpfs" if mounted else "rlimit")
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)
        folder.rmdir()
    else:
        shutil.rmtree(folder, ignore_errors=True)
