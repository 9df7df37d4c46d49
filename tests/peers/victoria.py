"""A real VictoriaMetrics for the tests: single-node binary from Debian's `victoria-metrics`,
on a free loopback port, with its data in a temporary directory.

`stop()` and `start()` keep the port and the data directory, so an outage test can take the
database away under load and bring the same one back.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.peers.ports import free_port

BINARY = Path("/usr/bin/victoria-metrics")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


class VictoriaMetrics:
    def __init__(self, datadir: Path, port: int, log: Path) -> None:
        self.datadir = datadir
        self.port = port
        self.log = log
        self.url = f"http://127.0.0.1:{port}"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        argv = [
            str(BINARY),
            f"-storageDataPath={self.datadir}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            "-retentionPeriod=100y",  # test timestamps may lie in the past
            "-search.disableCache",  # read-back must see the latest writes
            "-loggerLevel=WARN",
        ]
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"victoria-metrics exited:\n{self.log.read_text()[-4000:]}")
            if self._healthy():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"victoria-metrics did not become healthy:\n{self.log.read_text()}")

    def stop(self) -> None:
        """Graceful stop (SIGINT flushes what it acknowledged); the port stays ours."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def flush(self) -> None:
        """Make recently ingested samples visible to reads (they sit in buffers ~1 s)."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10) as resp:
            resp.read()

    def export(self, match: str = '{__name__!=""}') -> list[dict[str, Any]]:
        """Every series matching `match`: {"metric", "values", "timestamps"} per series."""
        self.flush()
        query = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{query}", timeout=30) as resp:
            body = resp.read().decode()
        return [json.loads(line) for line in body.splitlines() if line.strip()]


@contextmanager
def running_victoria() -> Iterator[VictoriaMetrics]:
    if not BINARY.exists():
        raise RuntimeError("VictoriaMetrics is not installed: Debian package victoria-metrics")
    base = Path(tempfile.mkdtemp(prefix="oss-vm-"))
    server = VictoriaMetrics(base / "data", free_port(), base / "victoria.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
