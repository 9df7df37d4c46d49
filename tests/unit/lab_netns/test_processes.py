"""A recorded pid is ended only while it is still the process the lab started."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from lab.netns import processes
from lab.netns.state import ROOT_NAMESPACE, ProcessRecord

SLEEP = shutil.which("sleep") or "/bin/sleep"


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([SLEEP, "60"])
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_the_same_program_in_the_same_namespace_is_ours(sleeper: subprocess.Popen[bytes]) -> None:
    record = ProcessRecord("mgmt", "sleep", sleeper.pid, ROOT_NAMESPACE, SLEEP)
    assert processes.is_recorded(record, {})
    assert processes.stop_node_daemons([record], timeout_s=5) == [record]
    assert not processes.alive(sleeper.pid)  # ended and reaped, not a zombie


def test_another_program_or_namespace_at_that_pid_is_left_alone(
    sleeper: subprocess.Popen[bytes],
) -> None:
    other_program = ProcessRecord("r1", "zebra", sleeper.pid, ROOT_NAMESPACE, "/usr/lib/frr/zebra")
    # Its namespace is gone and the process lives in ours: not the lab's any more.
    other_place = ProcessRecord("r1", "sleep", sleeper.pid, "oss-tunit-gone-r1", SLEEP)
    for record in (other_program, other_place):
        assert not processes.is_recorded(record, processes.inodes([record.namespace]))
    assert processes.stop_node_daemons([other_program, other_place], timeout_s=1) == []
    assert sleeper.poll() is None


def test_a_gone_pid_is_not_alive() -> None:
    done = subprocess.Popen([SLEEP, "0"])
    done.wait(timeout=10)
    assert not processes.alive(done.pid)
    assert processes.alive(os.getpid())
    assert processes.end([done.pid], timeout_s=1) == []
