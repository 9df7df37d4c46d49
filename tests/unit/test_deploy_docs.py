"""The deployment files of docs/deploy/ hold what docs/deploy.md says, checked with the real
tools where this machine has them: promtool (the alert rules, their tests and the scrape
configuration), systemd-analyze (the unit), `oss.settings` (the cluster's settings and a host's
environment file). The Dockerfile is read statically: there is no Docker engine here."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from oss.settings import Settings, ShutdownSettings, load_settings
from tests.integration.test_wheel_install import SOURCES

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "docs" / "deploy"
OSS = str(Path(sys.executable).parent / "oss")
INSTALLED_OSS = "/opt/oss/venv/bin/oss"  # where the unit expects the daemon (docs/deploy.md)


def run(*argv: str, cwd: Path = DEPLOY) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60)


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


# ------------------------------------------------------------------------- Prometheus


def test_alert_rules_pass_promtool() -> None:
    checked = run(tool("promtool"), "check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def test_every_alert_fires_on_its_failure_and_not_on_a_healthy_cluster() -> None:
    tested = run(tool("promtool"), "test", "rules", "alerts_test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    # ... and the tests cover every rule both ways: fired somewhere, quiet somewhere.
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    cases = yaml.safe_load((DEPLOY / "alerts_test.yml").read_text())["tests"]
    checks = [c for t in cases for c in t["alert_rule_test"]]
    fired = {c["alertname"] for c in checks if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in checks if not c.get("exp_alerts")}
    assert alerts - fired == set(), "alerts never shown firing"
    assert alerts - quiet == set(), "alerts never shown quiet"


def test_the_scrape_configuration_loads_the_rules() -> None:
    checked = run(tool("promtool"), "check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "alerts.yml" in checked.stdout


# ------------------------------------------------------------------------- systemd


def unit_entries() -> dict[str, list[str]]:
    """Key -> values of the unit (systemd allows a key more than once)."""
    entries: dict[str, list[str]] = {}
    for line in (DEPLOY / "oss.service").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            entries.setdefault(key.strip(), []).append(value.strip())
    return entries


def timespan_s(text: str) -> float:
    """A systemd time span in seconds, parsed by systemd itself."""
    parsed = run(tool("systemd-analyze"), "timespan", text)
    assert parsed.returncode == 0, parsed.stderr
    match = re.search(r"μs:\s*(\d+)", parsed.stdout)
    assert match is not None, parsed.stdout
    return int(match.group(1)) / 1e6


def budgets_s(shutdown: ShutdownSettings) -> float:
    return shutdown.ingress_s + shutdown.workers_s + shutdown.storage_s


def test_the_unit_waits_longer_than_the_shutdown_budgets() -> None:
    [stop] = unit_entries()["TimeoutStopSec"]
    timeout = timespan_s(stop)
    example = load_settings(DEPLOY / "oss.yaml").shutdown
    assert timeout >= budgets_s(ShutdownSettings()), "below the default budgets"
    assert timeout >= budgets_s(example), "below the example settings' budgets"
    entries = unit_entries()
    assert entries["KillSignal"] == ["SIGTERM"]  # the signal that stops the daemon in stages
    assert entries["KillMode"] == ["mixed"]  # SIGTERM to the daemon, not its helpers first


def test_systemd_verifies_the_unit(tmp_path: Path) -> None:
    """`systemd-analyze verify` with the daemon where this checkout has it (it checks that
    ExecStart is executable)."""
    text = (DEPLOY / "oss.service").read_text()
    assert INSTALLED_OSS in text
    unit = tmp_path / "oss.service"
    unit.write_text(text.replace(INSTALLED_OSS, OSS))
    verified = run(tool("systemd-analyze"), "verify", str(unit), cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert "oss.service" not in verified.stdout + verified.stderr  # no warning about it


def serve_options() -> set[str]:
    shown = run(OSS, "serve", "--help", cwd=REPO)
    assert shown.returncode == 0, shown.stderr
    return set(re.findall(r"(--[a-z][a-z-]*)", shown.stdout))


def test_the_unit_and_the_image_start_oss_serve_with_options_it_has() -> None:
    [start] = unit_entries()["ExecStart"]
    argv = shlex.split(start)
    assert argv[:2] == [INSTALLED_OSS, "serve"]
    image = dockerfile(final_stage_only=True)
    command = json.loads(image["ENTRYPOINT"][-1]) + json.loads(image["CMD"][-1])
    assert command[:2] == ["oss", "serve"]
    known = serve_options()
    for given in (argv, command):
        options = {a for a in given if a.startswith("--")}
        assert options - known == set(), f"not options of oss serve: {options - known}"


# ------------------------------------------------------------------------- the image


def dockerfile(*, final_stage_only: bool = False) -> dict[str, list[str]]:
    """Instruction -> its arguments, in order (continuation lines joined, comments dropped)."""
    logical: list[str] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    if final_stage_only:
        last = max(i for i, line in enumerate(logical) if line.upper().startswith("FROM "))
        logical = logical[last:]
    found: dict[str, list[str]] = {}
    for line in logical:
        word, _, rest = line.partition(" ")
        found.setdefault(word.upper(), []).append(rest.strip())
    return found


def test_the_image_runs_as_an_unprivileged_user() -> None:
    final = dockerfile(final_stage_only=True)
    assert "USER" in final, "no USER: the daemon would run as root"
    user = final["USER"][-1].split(":")[0]
    assert user not in {"root", "0"}
    assert "--uid 10001 --gid oss --home-dir /var/lib/oss" in " ".join(final["RUN"])


def test_the_image_health_check_asks_readyz() -> None:
    final = dockerfile(final_stage_only=True)
    [check] = final["HEALTHCHECK"]
    assert "/readyz" in check
    assert check.split("CMD", 1)[1].strip().startswith("[")  # exec form: no shell needed
    assert final["STOPSIGNAL"] == ["SIGTERM"]
    env = " ".join(final["ENV"])
    assert "OSS_API__PORT=8080" in env  # the port the check asks (environment beats the file)
    assert not re.search(r"PASSWORD|TOKEN|SECRET", env, re.IGNORECASE)  # secrets come at run


def test_the_image_builds_from_what_an_sdist_holds() -> None:
    """The build stage copies every path `pip install .` needs (the wheel test's list) and
    runs on a Python the project supports."""
    build = dockerfile()
    copied = {
        source
        for args in build["COPY"]
        if not args.startswith("--from")
        for source in shlex.split(args)[:-1]  # the last is the destination
    }
    assert set(SOURCES) - copied == set(), "the build misses these"
    bases = {re.match(r"python:(\d+)\.(\d+)", b).groups() for b in build["FROM"]}  # type: ignore[union-attr]
    assert bases == {("3", "11")}
    assert sys.version_info[:2] == (3, 11)  # the version the tests run


# ------------------------------------------------------------------------- settings


def test_the_cluster_example_loads_and_names_postgresql() -> None:
    settings = load_settings(DEPLOY / "oss.yaml")
    url = settings.resolved_database_url()
    assert url.startswith("postgresql+asyncpg://")
    assert ":" not in url.split("//", 1)[1].split("@", 1)[0], "a password in the file"
    cluster = settings.cluster
    assert cluster.enabled
    assert cluster.lease_s == 10.0
    assert [r.instances for r in cluster.affinity] == [["oss-a"], ["oss-b", "oss-c"]]
    assert settings.api.host == "0.0.0.0"


def env_file() -> dict[str, str]:
    entries = {}
    for line in (DEPLOY / "oss.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            entries[key] = value
    return entries


def test_a_hosts_environment_file_sets_real_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every OSS_* key of oss.env is a setting (a typo would stop the daemon), it overrides the
    shared file, and the secrets it holds do not print."""
    entries = env_file()
    assert entries, "empty"
    for key, value in entries.items():
        assert key.startswith("OSS_"), key
        monkeypatch.setenv(key, value)
    settings: Settings = load_settings(DEPLOY / "oss.yaml")
    assert settings.cluster.api_url == entries["OSS_CLUSTER__API_URL"]
    assert settings.resolved_database_url() == entries["OSS_DATABASE_URL"]
    shown: Any = repr(settings)
    assert "CHANGE-ME" not in shown
