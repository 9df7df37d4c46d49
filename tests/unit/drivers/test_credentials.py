"""Credential references never leak what a file holds (issue 14, defect 7): errors name the
reference and the problem, never a value or a key name (a secret pasted as a key is still a
secret; the file may be any file the daemon can read), and `file:` references can be held to
configured folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drivers.credentials import MAX_FILE_BYTES, check_reference, resolve_credentials
from oss.errors import ConfigError, InvalidInput

CANARY = "CANARY-7f3c9e"


def private(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    os.chmod(path, 0o600)
    return path


def refused(ref: str, **kwargs: object) -> str:
    with pytest.raises(ConfigError) as err:
        resolve_credentials(ref, device="r1", **kwargs)  # type: ignore[arg-type]
    return str(err.value)


def test_a_secret_pasted_as_a_key_is_counted_never_named(tmp_path: Path) -> None:
    path = private(tmp_path / "r1.yaml", f"username: oss\n{CANARY}-top: x\n")
    message = refused(f"file:{path}")
    assert CANARY not in message
    assert str(path) in message and "1 unexpected field" in message
    assert "known fields: username, password" in message  # ours, to help fix the file


def test_a_nested_secret_key_is_counted_under_its_known_parent(tmp_path: Path) -> None:
    text = f"snmp: {{version: '2c', community: c0mm, {CANARY}-a: 1, {CANARY}-b: 2}}\n"
    message = refused(f"file:{private(tmp_path / 'r1.yaml', text)}")
    assert CANARY not in message and "c0mm" not in message
    assert "snmp: 2 unexpected fields (known fields: version, community" in message


def test_another_programs_file_shows_neither_its_keys_nor_values(tmp_path: Path) -> None:
    # e.g. file:/root/.config/oss/cli.yaml, which the daemon can read
    text = f"url: http://127.0.0.1:8080\ntoken: {CANARY}\n"
    message = refused(f"file:{private(tmp_path / 'cli.yaml', text)}")
    for leak in (CANARY, "token", "url", "8080"):
        assert leak not in message
    assert "2 unexpected fields" in message


def test_a_wrong_value_names_the_field_not_the_value(tmp_path: Path) -> None:
    text = f"username: oss\nsnmp: {{version: '{CANARY}'}}\ntls: {{insecure: {CANARY}}}\n"
    message = refused(f"file:{private(tmp_path / 'r1.yaml', text)}")
    assert CANARY not in message
    assert "snmp.version: Input should be '2c' or '3'" in message
    assert "tls.insecure:" in message


def test_the_same_rules_hold_for_an_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("R1_CREDS", f"{{username: oss, {CANARY}: hunter2}}")
    message = refused("env:R1_CREDS")
    assert CANARY not in message and "hunter2" not in message
    assert "env:R1_CREDS" in message and "1 unexpected field" in message


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda d: d / "absent.yaml", "not found"),
        (lambda d: d, "a directory, not a file"),
        (lambda d: private(d / "big.yaml", "#" * (MAX_FILE_BYTES + 1)), "larger than 64 KiB"),
        (lambda d: private(d / "bin.yaml", b"username: \xff\xfe"), "not UTF-8 text"),
        (lambda d: private(d / "bad.yaml", f"username: [{CANARY}"), "not valid YAML or JSON"),
        (lambda d: private(d / "list.yaml", f"- {CANARY}\n"), "not a mapping of credential fields"),
    ],
    ids=["missing", "directory", "too-big", "binary", "not-yaml", "not-a-mapping"],
)
def test_each_file_problem_is_named(tmp_path: Path, make: object, problem: str) -> None:
    path = make(tmp_path)  # type: ignore[operator]
    message = refused(f"file:{path}")
    assert message == f"device r1: credentials file {path}: {problem}"


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)  # opening it for reading would wait for a writer forever
    assert refused(f"file:{fifo}").endswith(": not a regular file")


def test_an_unreadable_file_is_named_as_such(tmp_path: Path) -> None:
    path = private(tmp_path / "r1.yaml", "username: oss\n")
    os.chmod(path, 0)
    if os.access(path, os.R_OK):
        pytest.skip("running as a user who reads any file")
    assert refused(f"file:{path}").endswith("not readable by the daemon (permission denied)")


def test_a_file_others_can_read_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    path = tmp_path / "r1.yaml"
    path.write_text(f"{CANARY}: 1\n")
    os.chmod(path, 0o640)
    message = refused(f"file:{path}")
    assert message.endswith("readable by group or others; chmod 600 it")


# --- the allowed folders ----------------------------------------------------------------


def test_references_outside_the_allowed_folders_are_refused_unread(tmp_path: Path) -> None:
    allowed = tmp_path / "credentials"
    allowed.mkdir()
    outside = private(tmp_path / "cli.yaml", f"token: {CANARY}\n")
    with pytest.raises(InvalidInput) as err:
        check_reference(f"file:{outside}", [allowed, Path("/etc/oss/credentials")])
    message = str(err.value)
    assert message.startswith(f"credentials_ref: file:{outside} is outside the allowed")
    assert f"({allowed}, /etc/oss/credentials)" in message
    assert err.value.extra["problems"][0]["where"] == "credentials_ref"
    # at use, the same refusal, whether or not the file exists
    for ref in (f"file:{outside}", f"file:{tmp_path / 'absent.yaml'}"):
        message = refused(ref, allowed_dirs=[allowed])
        assert "outside the allowed credentials folders" in message
        assert "not found" not in message and CANARY not in message


def test_dot_dot_and_symlinks_cannot_leave_an_allowed_folder(tmp_path: Path) -> None:
    allowed = tmp_path / "credentials"
    allowed.mkdir()
    secret = private(tmp_path / "secret.yaml", "username: oss\n")
    (allowed / "link.yaml").symlink_to(secret)
    for ref in (f"file:{allowed}/../secret.yaml", f"file:{allowed / 'link.yaml'}"):
        with pytest.raises(InvalidInput, match="outside the allowed"):
            check_reference(ref, [allowed])


def test_references_inside_or_unrestricted_pass(tmp_path: Path) -> None:
    allowed = tmp_path / "credentials"
    allowed.mkdir()
    inside = private(allowed / "r1.yaml", "username: oss\n")
    assert resolve_credentials(f"file:{inside}", device="r1", allowed_dirs=[allowed]).username
    check_reference(f"file:{tmp_path / 'anywhere.yaml'}", None)
    check_reference("env:R1_CREDS", [allowed])  # only files live in folders


def test_a_relative_file_reference_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"credentials_ref: file:r1\.yaml: .*absolute path"):
        check_reference("file:r1.yaml", None)
