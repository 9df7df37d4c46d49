"""Where configs/ is (issue 14, defect 17): the shipped folder through importlib.resources, or an
operator's own folder from the `configs_dir` setting (`OSS_CONFIGS_DIR` or the settings file).
The loaders look the folder up when they load, so a choice made in the settings file takes effect
in the process that read it (no restart), and their caches never mix two folders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.platforms import check_platform_name, load_platform, platform_names
from oss import tmf
from oss.app import build
from oss.errors import ConfigError
from oss.paths import CONFIGS_ENV, configs_dir, packaged_configs_dir, use_configs_dir
from oss.settings import load_settings

OSS = str(Path(sys.executable).parent / "oss")

LOAD = """
import json
from drivers.platforms import load_platform, platform_names, platforms_dir
from oss.provisioning.service_types import services_dir
dirs = [str(platforms_dir()), str(services_dir())]
print(json.dumps({"platforms": platform_names(), "dirs": dirs,
                  "mine": load_platform("my-router").name}))
"""


@pytest.fixture
def own_configs(tmp_path: Path) -> Path:
    """A copy of the shipped folder with a platform, an offering and a TMF base path of the
    operator's own."""
    own = tmp_path / "my-configs"
    shutil.copytree(packaged_configs_dir(), own)
    linux = (own / "platforms" / "linux.yaml").read_text()
    mine = linux.replace("name: linux", "name: my-router")
    (own / "platforms" / "my-router.yaml").write_text(mine)
    _replace(own / "catalog" / "slices.yaml", "id: metro-slice-200", "id: my-slice")
    _replace(own / "tmf" / tmf.ALARM, '"basePath": "/tmf-api/alarm/v4/"', '"basePath": "/mine/"')
    return own


@pytest.fixture
def no_choice(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Neither the environment nor the settings choose a folder; whatever a test chooses is
    undone after it (the choice is process-wide)."""
    monkeypatch.delenv(CONFIGS_ENV, raising=False)
    use_configs_dir(None)
    yield
    use_configs_dir(None)


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path} no longer holds {old!r}"
    path.write_text(text.replace(old, new))


def run_load(env: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", LOAD],
        env={k: v for k, v in {**os.environ, **env}.items() if v},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    loaded: dict[str, object] = json.loads(done.stdout)
    return loaded


def test_the_shipped_folder_is_package_data() -> None:
    shipped = packaged_configs_dir()
    assert (shipped / "platforms" / "lab-sim.yaml").is_file()
    assert shipped.parent == Path(tmf.__file__).parent  # oss/configs, beside oss/tmf.py


def test_the_environment_chooses_the_folder(own_configs: Path) -> None:
    loaded = run_load({CONFIGS_ENV: str(own_configs)})
    assert loaded["mine"] == "my-router"
    assert "my-router" in loaded["platforms"]  # type: ignore[operator]
    assert loaded["dirs"] == [str(own_configs / "platforms"), str(own_configs / "services")]


@pytest.mark.usefixtures("no_choice")
def test_a_folder_chosen_in_the_settings_file_takes_effect_in_the_same_process(
    own_configs: Path, tmp_path: Path
) -> None:
    """The modules are imported (this test module imported them) before the settings file is
    read: the composition root hands its choice to the loaders, which look it up when they load
    (the folder was bound at import, so the process had to start itself again)."""
    settings = tmp_path / "oss.yaml"
    settings.write_text(
        f"configs_dir: {own_configs}\napi:\n  port: 0\nassurance:\n  enabled: false\n"
    )
    parts, api = build(load_settings(settings, state_dir=tmp_path / "state"))
    api._socket.close()  # built, never run: the API's socket is all it holds open
    check_platform_name("my-router")  # what POST /api/v1/devices checks
    assert load_platform("my-router").name == "my-router"
    assert parts.daemon.services.renderer.root == own_configs / "templates"
    assert parts.daemon.bss.catalog.get("my-slice").service_type == "slice"
    assert tmf.spec(tmf.ALARM).base_path == "/mine"


@pytest.mark.usefixtures("no_choice")
def test_another_folder_never_gets_the_data_loaded_from_the_first(own_configs: Path) -> None:
    """The loaders' caches are keyed by the folder they read: choosing another folder (or none)
    gives that folder's data, not what the first one cached."""
    shipped_alarm_base = tmf.spec(tmf.ALARM).base_path
    assert "my-router" not in platform_names()
    use_configs_dir(own_configs)
    assert configs_dir() == own_configs
    assert load_platform("my-router").name == "my-router"
    assert tmf.spec(tmf.ALARM).base_path == "/mine"
    use_configs_dir(None)
    assert configs_dir() == packaged_configs_dir()
    assert tmf.spec(tmf.ALARM).base_path == shipped_alarm_base == "/tmf-api/alarm/v4"
    with pytest.raises(ConfigError):
        load_platform("my-router")


def test_the_settings_choice_comes_before_the_environment_and_none_falls_back_to_it(
    own_configs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Settings already rank the environment above the file, so their choice is final; without
    one, `OSS_CONFIGS_DIR` (a process started with it) still chooses."""
    monkeypatch.setenv(CONFIGS_ENV, str(own_configs))
    try:
        use_configs_dir(None)
        assert configs_dir() == own_configs
        use_configs_dir(tmp_path)
        assert configs_dir() == tmp_path
    finally:
        use_configs_dir(None)


def test_a_folder_that_is_not_there_stops_the_daemon_with_exit_2(tmp_path: Path) -> None:
    settings = tmp_path / "oss.yaml"
    settings.write_text(f"api:\n  port: 0\nconfigs_dir: {tmp_path / 'nowhere'}\n")
    with pytest.raises(ConfigError, match=r"oss.yaml:3: configs_dir: .*nowhere is not a directory"):
        load_settings(settings)
    done = subprocess.run(
        [OSS, "serve", "--config", str(settings), "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and "nowhere is not a directory" in done.stderr
