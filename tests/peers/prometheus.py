"""A real Prometheus for the tests (Debian `prometheus`): a config in a temporary directory
scraping the given loopback targets every `scrape_interval_s`, TSDB in the same directory, on
a free loopback port; stopped (and the directory removed) at the end."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.peers.ports import free_port

PROMETHEUS = "/usr/bin/prometheus"


@dataclass(frozen=True)
class PrometheusServer:
    url: str
    workdir: Path

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The result vector of an instant query (GET /api/v1/query)."""
        address = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(address, timeout=10) as response:  # loopback only
            body = json.load(response)
        assert body["status"] == "success", body
        return list(body["data"]["result"])


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            pass  # not listening yet
        time.sleep(0.1)
    raise RuntimeError(f"prometheus not ready within {timeout_s} s")


@contextmanager
def running_prometheus(
    targets: Sequence[str], *, scrape_interval_s: float = 1.0
) -> Iterator[PrometheusServer]:
    """`targets`: "127.0.0.1:PORT" addresses serving /metrics."""
    if not Path(PROMETHEUS).exists():
        raise RuntimeError("Prometheus is not installed: run `make system-deps` (prometheus)")
    workdir = Path(tempfile.mkdtemp(prefix="oss-prometheus-"))
    interval = f"{int(scrape_interval_s * 1000)}ms"
    config = {  # JSON is YAML
        "global": {"scrape_interval": interval, "scrape_timeout": interval},
        "scrape_configs": [{"job_name": "oss", "static_configs": [{"targets": list(targets)}]}],
    }
    (workdir / "prometheus.yml").write_text(json.dumps(config))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(url, process, timeout_s=30)
        yield PrometheusServer(url, workdir)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        log.close()
        shutil.rmtree(workdir, ignore_errors=True)
