"""`oss lab ... --netns`: input errors exit 2 with what and where, before anything is made."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lab.netns import build, iproute
from lab.netns.plan import plan_lab
from lab.netns.state import LabState
from oss.cli.main import main
from topology.clab import parse_clab

TRIANGLE = Path(__file__).resolve().parents[3] / "tests" / "data" / "netns" / "triangle.clab.yml"


def _oss(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(list(argv))
        raise SystemExit(0)
    out = capsys.readouterr()
    return int(exited.value.code or 0), out.out, out.err


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """The root check passes, and nothing can be made: these are input errors."""
    monkeypatch.setattr(iproute, "unavailable", lambda: None)

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("build.up reached despite bad input")

    monkeypatch.setattr(build, "up", no_build)


def test_not_root_exits_2_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for argv in (
        ["lab", "up", "--netns", str(TRIANGLE), "--state-dir", str(tmp_path)],
        ["lab", "down", "--netns", "--state-dir", str(tmp_path)],
        ["lab", "exec", "--state-dir", str(tmp_path), "--", "true"],
    ):
        code, _, err = _oss(capsys, *argv)
        assert (code, err.strip()) == (2, "error: --netns needs root (network namespaces)"), argv


@pytest.mark.usefixtures("as_root")
def test_a_bad_file_names_file_and_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.clab.yml"
    bad.write_text("name: bad\ntopology:\n  nodes:\n    a: {kind: linux, mgmt-ipv4: 10.9.9.9}\n")
    code, _, err = _oss(
        capsys, "lab", "up", "--netns", str(bad), "--state-dir", str(tmp_path / "s")
    )
    assert code == 2
    assert f"{bad}:4: node a: mgmt-ipv4 10.9.9.9 is not a host address" in err
    assert not (tmp_path / "s").exists()


@pytest.mark.usefixtures("as_root")
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--prefix", "Bad_Prefix"], "namespace prefix 'Bad_Prefix'"),
        (["--subnet", "127.1.2.0/24"], "are the simulated lab's"),
        (["--high-ports"], "are the simulated lab's"),
    ],
)
def test_bad_options_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, extra: list[str], message: str
) -> None:
    argv = ["lab", "up", "--netns", str(TRIANGLE), "--state-dir", str(tmp_path / "s"), *extra]
    code, _, err = _oss(capsys, *argv)
    assert code == 2 and message in err, err
    assert "Traceback" not in err


@pytest.mark.usefixtures("as_root")
def test_exec_needs_a_command_and_down_without_a_lab_is_fine(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _oss(capsys, "lab", "exec", "--state-dir", str(tmp_path))
    assert code == 2 and "give the command after --" in err
    code, out, _ = _oss(capsys, "lab", "down", "--netns", "--state-dir", str(tmp_path))
    assert code == 0 and "nothing to take down" in out


@pytest.mark.usefixtures("as_root")
def test_faults_on_a_recorded_lab_check_their_words(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plan = plan_lab(parse_clab(TRIANGLE.read_text(), TRIANGLE.name), "oss-tunit")
    LabState.new(tmp_path, plan).save()  # recorded, nothing made
    where = ["--state-dir", str(tmp_path)]
    for change, message in (
        (["delay", "20"], "delay '20' is not a time like 20ms"),
        (["jitter", "2ms", "delay", "1ms"], "jitter larger than the delay"),
        (["sideways"], "expected pairs"),
    ):
        code, _, err = _oss(capsys, "lab", "fault", "link", "r1:eth1", *change, *where)
        assert code == 2 and message in err, (change, err)
    code, _, err = _oss(capsys, "lab", "fault", "link", "r9:eth1", "down", *where)
    assert code == 2 and "lab triangle has no link at 'r9:eth1'" in err
    code, _, err = _oss(capsys, "lab", "fault", "node", "r9", "down", *where)
    assert code == 2 and "lab triangle has no node 'r9' (nodes: r1, r2, r3)" in err


@pytest.mark.usefixtures("as_root")
def test_a_state_dir_that_is_a_file_exits_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    argv = ["lab", "up", "--netns", str(TRIANGLE), "--state-dir", str(not_a_dir)]
    code, _, err = _oss(capsys, *argv)
    assert (code, err.strip()) == (2, f"error: --state-dir {not_a_dir}: not a directory")
