"""The API contract gate: schemathesis against the daemon's own OpenAPI document.

A throwaway `oss serve` (its own state directory and free port) over the simulated chain lab
(seven devices, three protocols, on a random loopback /24) is fuzzed as admin with every check
schemathesis has: no 5xx, every status, content type, header and body as documented, invalid
input refused, valid input not refused for its shape, auth enforced, 405 with `Allow`. The run
is bounded (a fixed seed, a few examples per operation, a time budget) so it fits in `make test`
on two shared cores; any failure prints schemathesis's report with a curl line to replay it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.provisioning.conftest import ChainLab, running_chain_lab
from tests.peers.daemon import Daemon

SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")
HOOKS = "tests.integration.schemathesis_hooks"
OPENAPI = "/api/v1/openapi.json"
SEED = 20261206
MAX_EXAMPLES = 3
BUDGET_S = 100  # schemathesis's own budget for the whole run (--max-time)
# Endless streams by design (keepalives every 15 s): schemathesis could only read it until
# its request timeout, every example. tests/integration/faults/test_alarm_api.py and
# tests/integration/api/test_topology_stream.py test them.
EXCLUDED = ["/tmf-api/alarm/v4/alarm/stream", "/api/v1/topology/stream"]
# Statuses that say "this valid-looking input names nothing here or breaks a rule the schema
# cannot express" (an unknown device, a service type's own parameters, a busy resource): the
# positive_data_acceptance check takes them as a correct refusal, not a rejected valid input.
SEMANTIC_REFUSALS = [200, 201, 202, 204, 404, 409, 422]

CONFIG = f"""
[checks.positive_data_acceptance]
expected-statuses = {json.dumps([str(s) for s in SEMANTIC_REFUSALS])}
"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChainLab]:
    with running_chain_lab(tmp_path_factory.mktemp("fuzz-lab"), "fuzz-lab") as lab:
        yield lab


@pytest.fixture
def daemon(lab: ChainLab, tmp_path: Path) -> Iterator[Daemon]:
    env = {
        "OSS_DRIVERS__ALLOWED_NETWORKS": '["127.0.0.0/8"]',
        "OSS_DRIVERS__PORTS": json.dumps(lab.lab.ports.as_dict()),
        "OSS_DRIVERS__TIMEOUT_S": "10",
    }
    daemon = Daemon(tmp_path / "state", extra_args=["--topology", str(lab.clab_file)], env=env)
    daemon.state_dir.mkdir()
    daemon.start()
    try:
        yield daemon
    finally:
        code, log = daemon.stop()
        assert code == 0, log


def test_the_api_keeps_its_openapi_contract(daemon: Daemon, tmp_path: Path) -> None:
    token = daemon.create_token("admin")
    daemon.token = token
    own = next(t for t in daemon.cli_json("token", "list") if t["name"] == "t-admin")
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": HOOKS,
        "OSS_FUZZ_TOKEN_ID": str(own["id"]),
        "OSS_FUZZ_TOKEN_NAME": own["name"],
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "--config-file",
            str(config),
            "--no-color",
            "run",
            daemon.url + OPENAPI,
            "--checks",
            "all",
            "--seed",
            str(SEED),
            "--max-examples",
            str(MAX_EXAMPLES),
            "--generation-database",
            "none",
            "--max-time",
            str(BUDGET_S),
            "--request-timeout",
            "30",
            # One worker: hypothesis describes strategies with ast.parse, which CPython 3.11
            # does not do safely from two threads ("AST constructor recursion depth mismatch").
            "--workers",
            "1",
            "--header",
            f"Authorization: Bearer {token}",
            "--suppress-health-check",
            "all",
            *(arg for path in EXCLUDED for arg in ("--exclude-path", path)),
        ],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=BUDGET_S + 120,
    )
    (tmp_path / "schemathesis.txt").write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
