"""A normal install works (issue 14, defect 17): a wheel built from the checkout, installed in a
fresh venv (no editable install, no system site-packages), run from a folder outside the
checkout, carries configs/ and the lab's topologies, loads every platform, service type,
template set, catalogue and TMF spec file, and serves the API.

The dependencies come from a wheelhouse kept in pytest's cache, keyed by the versions this
venv has: the first run fills it through pip's usual indexes, later runs are offline
(`--no-index`), build backend included.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from oss.console.manifest import read_manifest, sha256_of
from tests.peers.ports import free_port

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
# What a source distribution holds: the packages, their data and the build metadata.
SOURCES = (
    "pyproject.toml",
    "README.md",
    "configs",
    "oss",
    "bss_bridge",
    "drivers",
    "topology",
    "lab",
)
PIP_TIMEOUT_S = 900  # the first run downloads the dependencies

# Runs inside the installed venv: everything configs/ and lab/topologies hold must load from
# the installed package, not from the checkout.
LOAD_EVERYTHING = """
import json
from importlib.resources import files
from pathlib import Path

import oss
from bss_bridge.catalog import Catalog, catalog_dir
from drivers.platforms import load_platform, platform_names, platforms_dir
from oss.demo import metro_topology
from oss.provisioning.render import templates_dir
from oss.provisioning.service_types import load_service_types, services_dir
from oss.tmf import TmfSpec, tmf_dir
from topology.clab import parse_clab

load_platform("lab-sim")  # was: "no definition at .../site-packages/configs/platforms/lab-sim.yaml"
types = load_service_types()
topologies = sorted(Path(str(files("lab") / "topologies")).glob("*.clab.yml"))
print(json.dumps({
    "package": oss.__file__,
    "folders": [
        str(folder())
        for folder in (platforms_dir, services_dir, templates_dir, catalog_dir, tmf_dir)
    ],
    "platforms": sorted(load_platform(name).name for name in platform_names()),
    "service_types": sorted(types),
    "offerings": sorted(o.id for o in Catalog.load(service_types=types).all()),
    "templates": sorted(
        str(p.relative_to(templates_dir())) for p in templates_dir().rglob("*.j2")
    ),
    "tmf": sorted(TmfSpec(p.name).base_path for p in tmf_dir().glob("*.json")),
    "topologies": {p.name: len(parse_clab(p.read_text(), p.name).devices) for p in topologies},
    "demo_topology": metro_topology().is_file(),
}))
"""


def _run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False, **kwargs
    )
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done


def _pip(python: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    return _run([str(python), "-m", "pip", "--disable-pip-version-check", *args])


def _copy_sources(into: Path) -> Path:
    """The checkout's working tree as an sdist would hold it (the build writes beside it)."""
    source = into / "src"
    source.mkdir()
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    for name in SOURCES:
        origin = REPO / name
        if origin.is_dir():
            # symlinks=True: oss/configs stays a link to configs/; the build follows it.
            shutil.copytree(origin, source / name, symlinks=True, ignore=skip)
        else:
            shutil.copy2(origin, source / name)
    return source


def _wheelhouse(cache_root: Path, source: Path) -> Path:
    """Wheels of the build backend and of every dependency, at this venv's versions."""
    frozen = _pip(sys.executable, "freeze", "--exclude-editable").stdout
    pins = "".join(line + "\n" for line in frozen.splitlines() if " @ " not in line)
    build = tomllib.loads((source / "pyproject.toml").read_text())["build-system"]["requires"]
    key = hashlib.sha256((pins + repr(build)).encode()).hexdigest()[:16]
    house = cache_root / f"wheelhouse-{key}"
    if (house / "complete").exists():
        return house
    house.mkdir(parents=True, exist_ok=True)
    (house / "pins.txt").write_text(pins)
    _pip(sys.executable, "wheel", "--wheel-dir", str(house), *build)
    # Resolve the project's own dependencies (from pyproject) at the pinned versions.
    dependencies = tomllib.loads((source / "pyproject.toml").read_text())["project"]
    _pip(
        sys.executable,
        "wheel",
        "--wheel-dir",
        str(house),
        "--constraint",
        str(house / "pins.txt"),
        *dependencies["dependencies"],
    )
    (house / "complete").write_text("")
    return house


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """The bin folder of a fresh venv with the project installed from its wheel."""
    work = tmp_path_factory.mktemp("wheel-install")
    source = _copy_sources(work)
    house = _wheelhouse(request.config.cache.mkdir("oss-wheel-install"), source)
    offline = ("--no-index", "--find-links", str(house))
    dist = work / "dist"
    _pip(sys.executable, "wheel", "--no-deps", *offline, "--wheel-dir", str(dist), str(source))
    [wheel] = dist.glob("oss_daemon-*.whl")
    venv = work / "venv"
    # No --system-site-packages; this pip installs into it, without compiling (time).
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = str(venv / "bin" / "python")
    _pip(sys.executable, "--python", python, "install", "--no-compile", *offline, str(wheel))
    return venv / "bin"


def _outside_env() -> dict[str, str]:
    """The environment minus anything that could lead the installed venv to the checkout."""
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "OSS_CONFIGS_DIR", "OSS_CONFIG"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def test_the_installed_package_loads_every_data_file(installed: Path, tmp_path: Path) -> None:
    done = _run(
        [str(installed / "python"), "-c", LOAD_EVERYTHING], cwd=tmp_path, env=_outside_env()
    )
    loaded = json.loads(done.stdout)
    venv = installed.parent
    assert Path(loaded["package"]).is_relative_to(venv)
    assert all(Path(folder).is_relative_to(venv) for folder in loaded["folders"])
    configs = REPO / "configs"
    assert loaded["platforms"] == sorted(p.stem for p in (configs / "platforms").glob("*.yaml"))
    assert loaded["service_types"] == sorted(p.stem for p in (configs / "services").glob("*.yaml"))
    assert loaded["offerings"]
    assert loaded["templates"] == sorted(
        str(p.relative_to(configs / "templates")) for p in (configs / "templates").rglob("*.j2")
    )
    assert len(loaded["tmf"]) == len(list((configs / "tmf").glob("*.json")))
    assert set(loaded["topologies"]) == {p.name for p in (REPO / "lab/topologies").glob("*.yml")}
    assert all(count > 0 for count in loaded["topologies"].values())
    assert loaded["demo_topology"]


def test_the_installed_daemon_serves_the_api(installed: Path, tmp_path: Path) -> None:
    # The metro lab as installed with the package, merged into the inventory at start-up.
    [metro] = installed.parent.glob("lib/python*/site-packages/lab/topologies/metro.clab.yml")
    with _serving(installed, tmp_path, "--topology", str(metro)) as url:
        # the console's files are in the wheel too, its vendored library as the manifest says
        index = httpx.get(url + "/ui/")
        assert index.status_code == 200 and "vendor/cytoscape.min.js?v=" in index.text
        manifest = read_manifest()
        script = httpx.get(f"{url}/ui/vendor/cytoscape.min.js?v={manifest.version}")
        assert sha256_of(script.content) == manifest.sha256["cytoscape.min.js"]


def test_an_own_configs_folder_from_the_settings_file(installed: Path, tmp_path: Path) -> None:
    [shipped] = installed.parent.glob("lib/python*/site-packages/oss/configs")
    own = tmp_path / "my-configs"
    shutil.copytree(shipped, own)
    linux = (own / "platforms" / "linux.yaml").read_text()
    (own / "platforms" / "my-router.yaml").write_text(
        linux.replace("name: linux", "name: my-router")
    )
    settings = tmp_path / "oss.yaml"
    settings.write_text(f"configs_dir: {own}\n")
    with _serving(installed, tmp_path, "--config", str(settings)) as url:
        token = _run(
            [
                *(str(installed / "oss"), "token", "create", "--role", "operator"),
                *("--state-dir", str(tmp_path / "state")),
            ],
            cwd=tmp_path,
            env=_outside_env(),
        ).stdout.strip()
        api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})
        mine = api.post("/api/v1/devices", json={"name": "r1", "platform": "my-router"})
        assert mine.status_code == 201, mine.text
        unknown = api.post("/api/v1/devices", json={"name": "r2", "platform": "nosuch"})
        assert unknown.status_code == 422, unknown.text


@contextlib.contextmanager
def _serving(installed: Path, tmp_path: Path, *args: str) -> Iterator[str]:
    """The installed `oss serve`, started from a folder outside the checkout, ready; stopped
    with SIGTERM, exit code 0."""
    port = free_port()
    (tmp_path / "run").mkdir()
    daemon = subprocess.Popen(
        [
            str(installed / "oss"),
            *("serve", "--state-dir", str(tmp_path / "state"), "--port", str(port), *args),
        ],
        cwd=tmp_path / "run",
        env=_outside_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        ready = _wait_ready(daemon, url + "/readyz")
        if ready:
            yield url
    finally:
        daemon.send_signal(signal.SIGTERM)
        _, log = daemon.communicate(timeout=60)
    assert ready, log
    assert daemon.returncode == 0, log


def _wait_ready(daemon: subprocess.Popen[str], url: str, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and daemon.poll() is None:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return False
