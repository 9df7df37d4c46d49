"""`oss lab` papercuts (issue 14): after `make run`, `oss lab status` finds the lab in
./.state/lab without --state-dir and answers `-o json` given after the command; neither the CLI
nor the lab process prints cryptography's DSA deprecation noise."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.integration.lab.conftest import RING4, random_subnet
from tests.peers.daemon import OSS
from tests.peers.lab_process import lab_state_dir

pytestmark = pytest.mark.integration

NOISE = "CryptographyDeprecationWarning"


def oss(cwd: Path, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OSS_LAB_STATE_DIR", "OSS_TOKEN")}
    # The default lab directory (~/.local/share/oss/lab) lives in a home of this test's own.
    env.update(XDG_DATA_HOME=str(home / "data"), OSS_CLI_CONFIG=str(home / "cli.yaml"))
    return subprocess.run(
        [OSS, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_status_finds_the_make_run_lab_and_speaks_json(tmp_path: Path) -> None:
    checkout, home = tmp_path / "checkout", tmp_path / "home"
    checkout.mkdir()
    home.mkdir()
    with lab_state_dir(checkout / ".state" / "lab") as directory:
        up = oss(
            checkout, home, "lab", "up", str(RING4), "--state-dir", str(directory),
            "--subnet", random_subnet(), "--no-gnmi", "--no-inventory",
        )  # fmt: skip
        assert up.returncode == 0, up.stderr
        assert NOISE not in up.stderr

        status = oss(checkout, home, "lab", "status", "-o", "json")
        assert status.returncode == 0, status.stderr
        assert sorted(json.loads(status.stdout)["nodes"]) == ["r1", "r2", "r3", "r4"]
        assert NOISE not in status.stderr
        assert NOISE not in (directory / "lab.log").read_text()

        elsewhere = oss(home, home, "lab", "status")
        assert elsewhere.returncode == 1
        assert "no lab is running (looked in " in elsewhere.stderr
        assert "--state-dir" in elsewhere.stderr and NOISE not in elsewhere.stderr

        down = oss(checkout, home, "lab", "down")
        assert down.returncode == 0, down.stderr
