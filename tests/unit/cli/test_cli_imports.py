"""The client commands load the HTTP client and what they print, not the daemon: `oss --help` and
`oss device list` run in a fresh interpreter, and the daemon's heavy modules must not be there
afterwards (this is about which modules load, not about time; `bench/cli_startup.py` times it).

`device list` talks to a stub HTTP server inside the same subprocess (a fake daemon: the point
is what the CLI imports, and the stub's own imports are the standard library's)."""

from __future__ import annotations
import __future__

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.core import TyperGroup

from oss.cli.main import COMMAND_MODULES, COMMANDS, CommandStub, app, command_name, register

# The daemon's stack: none of it is needed to print help or to ask the REST API. (pydantic is
# not here: typer 0.29 itself checks every parameter of a command with it.)
HEAVY = (
    "networkx",
    "sqlalchemy",
    "pysnmp",
    "gmqtt",
    "influxdb_client",
    "alembic",
    "fastapi",
    "uvicorn",
    "httpx",
    "oss.store",
    "oss.provisioning",
    "oss.assurance",
    "oss.faults",
    "oss.settings",
    "oss.app",
    "bss_bridge",
    "drivers",
    "lab.sim",
)

HELP = """
import json, sys
from oss.cli.main import main
try:
    main(["--help"])
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)))
"""

DEVICE_LIST = """
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGE = {"items": [{"name": "r1", "role": "pe", "platform": "linux", "site": "lab",
                   "mgmt_address": None, "state": "active"}], "total": 1}

class FakeDaemon(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(PAGE).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), FakeDaemon)
threading.Thread(target=server.serve_forever, daemon=True).start()
from oss.cli.main import main
url = f"http://127.0.0.1:{server.server_address[1]}"
try:
    main(["--url", url, "--token", "t", "device", "list"])
except SystemExit as exc:
    assert not exc.code, exc.code
server.shutdown()
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def loaded_after(code: str, env: dict[str, str], *, modules_on: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    stream = result.stdout if modules_on == "stdout" else result.stderr
    last_line = stream.strip().splitlines()[-1]
    modules: list[str] = json.loads(last_line)
    return modules


def heavy_among(modules: list[str]) -> list[str]:
    """The HEAVY names loaded (a package counts when any module of it is)."""
    return [h for h in HEAVY if any(m == h or m.startswith(h + ".") for m in modules)]


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OSS_URL", "OSS_TOKEN")}
    return {**env, "OSS_CLI_CONFIG": str(tmp_path / "cli.yaml"), "COLUMNS": "120"}


def test_help_loads_none_of_the_daemon(cli_env: dict[str, str]) -> None:
    modules = loaded_after(HELP, cli_env, modules_on="stdout")
    assert "oss.cli.main" in modules
    assert heavy_among(modules) == []


def test_device_list_loads_only_the_http_client_and_the_table(cli_env: dict[str, str]) -> None:
    modules = loaded_after(DEVICE_LIST, cli_env, modules_on="stderr")
    assert "oss.cli.client" in modules
    assert heavy_among(modules) == []


def test_every_top_level_command_is_in_the_table() -> None:
    """A command missing from COMMAND_MODULES would vanish when only its module is loaded."""
    register()
    groups = {info.name for info in app.registered_groups}
    commands = {
        info.name or info.callback.__name__ for info in app.registered_commands if info.callback
    }
    assert groups | commands == set(COMMAND_MODULES)


def test_the_tables_help_lines_are_the_commands_own() -> None:
    """The root help shows COMMANDS' help lines without loading the modules: each must be the
    first paragraph of its command's real help, as typer would print it."""
    register()
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    for name, (module, help_line) in COMMANDS.items():
        command = group.commands[name]
        assert not isinstance(command, CommandStub), name
        assert command.callback is None or command.callback.__module__ == f"oss.cli.{module}"
        real = inspect.cleandoc(command.short_help or command.help or "").split("\n\n")[0]
        assert help_line == real.replace("\n", " ").strip(), name


FULL_HELP = """
from oss.cli.main import main, register
register()
try:
    main(["--help"])
except SystemExit:
    pass
"""

LAZY_HELP = """
import sys
from oss.cli.main import main
try:
    main(["--help"])
except SystemExit:
    pass
assert not [m for m in sys.modules if m.startswith("oss.cli.") and m != "oss.cli.main"
            and m not in ("oss.cli.client", "oss.cli.config", "oss.cli.output")]
"""


def test_root_help_without_the_command_modules_is_the_full_help(cli_env: dict[str, str]) -> None:
    def help_text(code: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=cli_env
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    lazy = help_text(LAZY_HELP)
    assert "transaction" in lazy
    assert lazy == help_text(FULL_HELP)


def run_oss(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = f"from oss.cli.main import main; main({argv!r})"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env
    )


def test_an_unknown_command_gets_typers_error_and_suggestions(cli_env: dict[str, str]) -> None:
    typo = run_oss(["devic", "list"], cli_env)
    assert typo.returncode == 2
    assert "No such command 'devic'. Did you mean 'device', 'service'?" in typo.stderr


def test_a_command_the_table_lookup_missed_still_runs(cli_env: dict[str, str]) -> None:
    """After `--` command_name() sees no command: the stub loads the module when it runs."""
    shown = run_oss(["--", "site", "--help"], cli_env)
    assert shown.returncode == 0, shown.stderr
    assert "Usage: oss site [OPTIONS] COMMAND [ARGS]..." in shown.stdout


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["device", "list"], "device"),
        (["--url", "http://x", "--token", "t", "-o", "json", "alarm", "watch"], "alarm"),
        (["--url=http://x", "-ojson", "token", "list"], "token"),
        (["--help"], None),
        (["-h"], None),
        ([], None),
        (["nosuch"], "nosuch"),
    ],
)
def test_command_name_skips_the_root_options(argv: list[str], name: str | None) -> None:
    assert command_name(argv) == name


def test_command_modules_keep_real_annotations() -> None:
    """String annotations (`from __future__ import annotations`) make typer parse and evaluate
    every command's annotations at each start; `serve` is the exception (one command whose
    helpers name the daemon's Settings only for the type checker)."""
    register()
    for name in set(COMMAND_MODULES.values()) - {"serve"}:
        module = sys.modules[f"oss.cli.{name}"]
        assert getattr(module, "annotations", None) is not __future__.annotations, name
