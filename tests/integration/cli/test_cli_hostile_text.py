"""Data is never markup (issue 14, defect 6): text the daemon stores or a device reports prints
exactly as it is in every command family's tables, titles and errors, against a real `oss
serve` (alarms: the real app behind a real uvicorn, raised through the daemon's manager)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from oss.api import create_app
from oss.app import assemble
from oss.auth_roles import Role
from oss.daemon import Daemon as Parts
from oss.faults.alarms import Signal
from oss.settings import load_settings
from tests.peers.app_server import serving
from tests.peers.daemon import OSS, Daemon

REPO = Path(__file__).resolve().parents[3]
RING = REPO / "lab" / "topologies" / "ring4.clab.yml"
# An unmatched closing tag (MarkupError), an emoji code, a style, a list key.
HOSTILE = ("[/x]", ":link:", "[bold]x[/bold]", "[name=gold-eth1]")
TEXT = " ".join(HOSTILE)
# In a URL path a "/" is a separator the router acts on: names in paths come without one.
IN_PATH = ("[not-in-range]", ":link:", "[name=gold-eth1]")


def assert_shown(out: str, pieces: tuple[str, ...] = HOSTILE) -> None:
    assert "Traceback" not in out, out
    for piece in pieces:
        assert piece in out, f"{piece!r} missing from:\n{out}"


def assert_verbatim(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert_shown(result.stdout + result.stderr)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    d = Daemon(tmp_path_factory.mktemp("hostile"), extra_args=["--topology", str(RING)])
    d.start(wait=False)
    try:
        d.wait_ready(timeout=120)  # a shared, busy host: start-up is not what is tested here
        d.token = d.create_token("operator")
        yield d
    finally:
        d.kill()


def test_sites_print_their_description_verbatim(daemon: Daemon) -> None:
    assert_verbatim(daemon.cli("site", "add", "hostile", "--description", TEXT))
    assert_verbatim(daemon.cli("site", "list"))  # every later list too
    listed = {site["name"]: site for site in daemon.cli_json("site", "list")}
    assert listed["hostile"]["description"] == TEXT  # JSON output stays raw


def test_devices_print_stored_text_verbatim(daemon: Daemon) -> None:
    assert_verbatim(daemon.cli("device", "add", "hostile1", "--image", TEXT))
    assert_verbatim(daemon.cli("device", "show", "hostile1"))
    assert_verbatim(daemon.cli("device", "set", "hostile1", f"kind={TEXT}"))


def test_customers_and_accounts_print_names_verbatim(daemon: Daemon) -> None:
    assert_verbatim(daemon.cli("customer", "create", "hostile", "--name", TEXT))
    assert_verbatim(daemon.cli("customer", "list"))
    assert_verbatim(daemon.cli("customer", "show", "hostile"))
    created = daemon.cli(
        "account", "create", "--customer", "hostile", "--name", TEXT, "--currency", "EUR"
    )
    assert_verbatim(created)
    assert_verbatim(daemon.cli("account", "list"))


@pytest.mark.parametrize(
    "args",
    [
        ("device", "show", " ".join(IN_PATH)),  # 404 naming the device
        ("service", "show", " ".join(IN_PATH)),
        ("customer", "show", " ".join(IN_PATH)),
        ("order", "show", " ".join(IN_PATH)),
        ("sla", "show", " ".join(IN_PATH)),
        # 422 from the daemon, naming the parameter and the value
        ("slice", "create", "--from", "r1", "--to", "r3", "--bandwidth", TEXT, "--customer", "c"),
        ("link", "set", "1", "--capacity", TEXT),  # the CLI's own validation, exit 2
    ],
)
def test_errors_name_the_input_verbatim(daemon: Daemon, args: tuple[str, ...]) -> None:
    result = daemon.cli(*args)
    assert result.returncode in (1, 2) and result.stderr.startswith("error: "), result.stderr
    assert_shown(result.stderr, HOSTILE if TEXT in args else IN_PATH)


# --- alarms: raised through the daemon, listed by the CLI process over real HTTP -------------


def hostile_alarm() -> Signal:
    return Signal(
        kind="raise",
        reduction_key="linkFailure:link:15",
        alarm_type="communicationsAlarm",
        severity="critical",
        probable_cause="lossOfSignal",
        specific_problem=f"link 15 down: {TEXT}",
        object_type="link",
        object="15",
        time_ns=time.time_ns(),
    )


@pytest.fixture
async def alarm_daemon(tmp_path: Path) -> AsyncIterator[tuple[Parts, str, str]]:
    async with assemble(load_settings(None, state_dir=tmp_path)) as daemon:
        token, _ = await daemon.tokens.create(name="hostile", role=Role.VIEWER, actor="test")
        async with serving(create_app(daemon)) as url:
            yield daemon, url, token


async def oss(
    url: str, token: str, *args: str, columns: int = 200
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OSS_URL": url,
        "OSS_TOKEN": token,
        "OSS_CLI_CONFIG": "/nonexistent/cli.yaml",
        "COLUMNS": str(columns),
    }
    # A thread: the server answering this process runs on this test's event loop.
    return await asyncio.to_thread(
        subprocess.run, [OSS, *args], env=env, capture_output=True, text=True, timeout=60
    )


async def test_alarms_print_keys_and_problems_verbatim(
    alarm_daemon: tuple[Parts, str, str],
) -> None:
    daemon, url, token = alarm_daemon
    ((_, doc),) = await daemon.alarms.signal(hostile_alarm())
    listed = await oss(url, token, "alarm", "list")
    assert_verbatim(listed)
    shown = await oss(url, token, "alarm", "show", str(doc["id"]))
    assert_verbatim(shown)
    assert "linkFailure:link:15" in shown.stdout  # not "linkFailure🔗15"


async def test_alarm_list_keeps_severity_and_state_whole_at_80_columns(
    alarm_daemon: tuple[Parts, str, str],
) -> None:
    daemon, url, token = alarm_daemon
    await daemon.alarms.signal(hostile_alarm())
    listed = await oss(url, token, "alarm", "list", columns=80)
    assert listed.returncode == 0, listed.stderr
    assert max(len(line) for line in listed.stdout.splitlines()) <= 80
    assert "critical" in listed.stdout and "raised" in listed.stdout


def test_topology_errors_name_the_file_verbatim(daemon: Daemon, tmp_path: Path) -> None:
    bad = tmp_path / "[name=gold-eth1] :link: [bold]x.clab.yml"
    bad.write_text("name: bad\ntopology:\n  links:\n    - endpoints: [r1:eth1, ghost:eth1]\n")
    result = daemon.cli("topology", "import", str(bad))
    assert result.returncode == 2
    assert_shown(result.stderr.replace("\n", ""), ("[name=gold-eth1] :link: [bold]x.clab.yml",))
