from __future__ import annotations

from pathlib import Path

import pytest

from oss.errors import ConfigError
from oss.settings import load_settings

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "oss.yaml"
    path.write_text(text)
    return path


def test_defaults_listen_on_loopback_8080(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OSS_API__HOST", raising=False)
    settings = load_settings()
    assert (settings.api.host, settings.api.port) == ("127.0.0.1", 8080)
    assert settings.log.format == "text"
    assert settings.resolved_database_url().startswith("sqlite+aiosqlite:///")
    assert settings.resolved_database_url().endswith("oss.db")


def test_example_file_loads() -> None:
    settings = load_settings(REPO / "configs" / "oss.example.yaml")
    assert settings.api.port == 8080
    assert settings.topology.import_file == Path("lab/topologies/metro.clab.yml")


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "api:\n  host: 127.0.0.2\n  port: 9000\n")
    monkeypatch.setenv("OSS_API__PORT", "9100")
    settings = load_settings(path)
    assert settings.api.port == 9100
    assert settings.api.host == "127.0.0.2"  # the file still provides the rest of the section


def test_options_override_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSS_API__PORT", "9100")
    settings = load_settings(None, api={"port": 9200}, state_dir=tmp_path)
    assert settings.api.port == 9200
    assert settings.resolved_database_url() == f"sqlite+aiosqlite:///{tmp_path / 'oss.db'}"


def test_database_url_is_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSS_DATABASE_URL", "postgresql+asyncpg://oss:hunter2@127.0.0.1/oss")
    settings = load_settings()
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings.model_dump())
    assert "hunter2" in settings.resolved_database_url()


def test_bad_value_names_file_line_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "log:\n  format: json\napi:\n  host: 127.0.0.1\n  port: 99999\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    message = str(err.value)
    assert f"{path}:5: api.port" in message
    assert "less than or equal to 65535" in message


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "api:\n  prot: 8080\n")
    with pytest.raises(ConfigError, match=r"oss\.yaml:2: api\.prot: unknown key"):
        load_settings(path)


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    path = write(tmp_path, "api:\n  host: [127.0.0.1\n  port: 1\n")
    with pytest.raises(ConfigError, match=r"oss\.yaml:\d+: not valid YAML"):
        load_settings(path)


def test_file_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- just\n- a list\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_settings(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read settings file"):
        load_settings(tmp_path / "absent.yaml")


def test_bad_environment_value_names_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OSS_LOG__FORMAT", "xml")
    with pytest.raises(ConfigError, match="OSS_LOG__FORMAT"):
        load_settings()
