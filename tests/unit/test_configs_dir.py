"""Where configs/ is (issue 14, defect 17): the shipped folder through importlib.resources, or an
operator's own folder from the `configs_dir` setting (`OSS_CONFIGS_DIR` or the settings file;
`oss serve` started with it in the settings file starts again with it in the environment)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from oss.errors import ConfigError
from oss.paths import CONFIGS_ENV, configs_dir, packaged_configs_dir, restart_args
from oss.settings import load_settings

OSS = str(Path(sys.executable).parent / "oss")

LOAD = """
import json
from drivers.platforms import PLATFORMS_DIR, load_platform, platform_names
from oss.provisioning.service_types import SERVICES_DIR
print(json.dumps({"platforms": platform_names(), "dirs": [str(PLATFORMS_DIR), str(SERVICES_DIR)],
                  "mine": load_platform("my-router").name}))
"""


@pytest.fixture
def own_configs(tmp_path: Path) -> Path:
    """A copy of the shipped folder with one platform of the operator's own."""
    own = tmp_path / "my-configs"
    shutil.copytree(packaged_configs_dir(), own)
    linux = (own / "platforms" / "linux.yaml").read_text()
    mine = linux.replace("name: linux", "name: my-router")
    (own / "platforms" / "my-router.yaml").write_text(mine)
    return own


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
    assert shipped.parent == Path(__import__("oss").__file__).parent


def test_the_environment_chooses_the_folder(own_configs: Path) -> None:
    loaded = run_load({CONFIGS_ENV: str(own_configs)})
    assert loaded["mine"] == "my-router"
    assert "my-router" in loaded["platforms"]  # type: ignore[operator]
    assert loaded["dirs"] == [str(own_configs / "platforms"), str(own_configs / "services")]


def test_a_folder_chosen_in_the_settings_file_restarts_serve_with_it(
    own_configs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CONFIGS_ENV, raising=False)
    assert restart_args(None) is None
    assert restart_args(configs_dir()) is None  # already in use
    restart = restart_args(own_configs)
    assert restart is not None
    args, env = restart
    assert args == sys.orig_argv and env[CONFIGS_ENV] == str(own_configs)
    monkeypatch.setenv(CONFIGS_ENV, str(own_configs))
    assert restart_args(own_configs) is None  # the restarted process: no loop


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
