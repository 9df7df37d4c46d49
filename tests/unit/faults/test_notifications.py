"""The table of well-known notifications (configs/notifications.yaml): loaded, and refused with
every problem's file and line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from oss.errors import ConfigError
from oss.faults.notifications import load_notifications
from oss.paths import CONFIGS_ENV


def test_the_shipped_table_names_the_agent_start_and_stop_notifications() -> None:
    table = load_notifications()
    shutdown = table.by_oid("1.3.6.1.4.1.8072.4.0.2")
    assert shutdown is not None and shutdown.name == "nsNotifyShutdown"
    assert (shutdown.kind, shutdown.problem) == ("alarm", "SNMP agent shut down")
    for start in ("coldStart", "warmStart", "nsNotifyRestart"):
        known = table.by_name(start)
        assert known is not None and "nsNotifyShutdown" in known.clears
    link_down = table.by_oid(".1.3.6.1.6.3.1.1.5.3")  # a leading dot is the same OID
    assert link_down is not None and link_down.kind == "link-down"
    assert table.by_oid("1.3.6.1.4.1.9999.0.1") is None  # unknown: the rules keep it generic


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "notifications.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_problems_are_reported_with_their_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """notifications:
  up:
    oid: 1.3.6.1.9.1
    kind: event
    clears: [down, gone]
  down:
    oid: 1.3.6.1.9.2
    kind: alarm
    severity: fatal
  again:
    oid: 1.3.6.1.9.1
    kind: event
    colour: red
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_notifications(path)
    message = str(caught.value)
    assert f"{path}:9: notifications.down.severity: Input should be" in message
    assert f"{path}:13: notifications.again.colour: unknown key" in message


def test_what_the_schema_cannot_say_is_checked_too(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """notifications:
  up:
    oid: 1.3.6.1.9.1
    kind: event
    clears: [down, gone, up]
  down:
    oid: 1.3.6.1.9.2
    kind: alarm
  again:
    oid: .1.3.6.1.9.1
    kind: event
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_notifications(path)
    message = str(caught.value)
    assert "(5 problems)" in message
    assert f"{path}:6: notifications.down: an alarm needs `problem`" in message
    assert f"{path}:6: notifications.down: an alarm needs `alarm_type`" in message
    assert f"{path}:5: notifications.up.clears: no notification 'gone' in this table" in message
    assert f"{path}:5: notifications.up.clears: up raises no alarm to clear" in message
    assert f"{path}:10: notifications.again.oid: 1.3.6.1.9.1 is also up's" in message


def test_a_broken_file_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "notifications:\n  up: [\n")
    with pytest.raises(ConfigError, match=rf"^{path}:3: not valid YAML"):
        load_notifications(path)
    with pytest.raises(ConfigError, match="cannot read the notifications table"):
        load_notifications(tmp_path / "absent.yaml")


def test_the_table_comes_from_the_configs_folder_in_use(tmp_path: Path) -> None:
    """An operator's own configs folder (OSS_CONFIGS_DIR, what the `configs_dir` setting
    becomes) has its own table: a fresh process reads it there."""
    write(tmp_path, "notifications:\n  only:\n    oid: 1.3.6.1.9.1\n    kind: event\n")
    code = (
        "import oss.settings, oss.faults.rules\n"
        "from oss.faults.notifications import load_notifications\n"
        "print(load_notifications().by_name('only'))\n"
    )
    env = {**os.environ, CONFIGS_ENV: str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert "name='only'" in done.stdout
