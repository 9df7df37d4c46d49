"""`oss`: run the daemon (`oss serve`) and manage it through its REST API.

Exit codes: 0 success; 1 the operation failed (unreachable daemon, unknown object, conflict,
refused token, device or server error); 2 the input was wrong (usage, settings or topology file,
a payload the API rejected as invalid).

Start-up time: a client command (and `--help`) loads typer, Rich, the HTTP client and the
`oss.cli` modules, never the daemon (`bench/cli_startup.py`, `tests/unit/cli/test_cli_imports.py`).
Commands that need the daemon's modules (`serve`, `token create` without `--via-api`, `lab`,
`demo`, printing a bill's money) import them inside the function that uses them: the one
accepted use of function-level imports in this project, and only for that reason. The command
modules do without `from __future__ import annotations`: typer reads every command's annotations
at each start, and as strings it parses and evaluates them twice (5x the time).
"""

import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main
from typer._click import Command as ClickCommand  # typer 0.29 bundles its click
from typer._click import Context as ClickContext
from typer.core import TyperCommand, TyperGroup

from oss.cli.client import ApiClient, ClientError
from oss.cli.config import load_cli_config
from oss.cli.output import Format, emit_json, error, show
from oss.errors import ConfigError, InvalidInput, OssError
from oss.known_warnings import silence_known_warnings


class CommandStub(TyperCommand):
    """A top-level command whose module is not loaded: its name and help line for the root
    help (and for typer's "Did you mean"), from COMMANDS."""


class LazyCommands(TyperGroup):
    """The root group: the commands whose modules are loaded, and a stub for each other one."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        loaded = dict(self.commands)
        # The table's order, whichever modules loaded (and in whatever order they attached).
        self.commands = {
            name: loaded.pop(name) if name in loaded else CommandStub(name, help=help_line)
            for name, (_, help_line) in COMMANDS.items()
        } | loaded

    def resolve_command(
        self, ctx: ClickContext, args: list[str]
    ) -> tuple[str | None, ClickCommand | None, list[str]]:
        # Only if command_name() did not see the command (`oss -- device list`): load it now.
        name, command, rest = super().resolve_command(ctx, args)
        if name is not None and isinstance(command, CommandStub):
            importlib.import_module(f"oss.cli.{COMMANDS[name][0]}")
            loaded = typer.main.get_command(app)
            assert isinstance(loaded, TyperGroup)
            command = loaded.commands[name]
        return name, command, rest


app = typer.Typer(
    cls=LazyCommands,
    help="Network OSS automation and assurance daemon.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@dataclass
class Context:
    url: str
    token: str | None
    output: Format

    def client(self) -> ApiClient:
        return ApiClient(self.url, self.token)


@app.callback()
def root(
    ctx: typer.Context,
    url: Annotated[str | None, typer.Option("--url", envvar="OSS_URL", help="daemon URL")] = None,
    token: Annotated[
        str | None,
        typer.Option("--token", envvar="OSS_TOKEN", help="bearer token", show_default=False),
    ] = None,
    output: Annotated[Format, typer.Option("-o", "--output", help="table or json")] = Format.TABLE,
) -> None:
    saved = load_cli_config()
    ctx.obj = Context(url=url or saved.url, token=token or saved.token, output=output)


def get_context(ctx: typer.Context) -> Context:
    obj: Context = ctx.obj
    return obj


# Each top-level command: the module that defines it and its line in the root help, in the
# help's order. A command line loads only its command's module (converting ~80 commands into
# click's takes typer longer than Python takes to start); `oss`, `--help` and anything unknown
# load none: the root group lists the commands from this table (CommandStub), so the help and a
# typo's "No such command ... Did you mean" are typer's own. tests/unit/cli/test_cli_imports.py
# checks the table is complete and its help lines are the modules' (the rendered help is equal).
COMMANDS: dict[str, tuple[str, str]] = {
    "audit": ("audit", "The audit log, newest first."),
    "console": (
        "console",
        "The web console's address (the daemon's own /ui/), and who the token signs in as.",
    ),
    "demo": (
        "demo",
        "Order a slice, break its SLA with a link failure, and print the bill with the credit.",
    ),
    "serve": ("serve", "Run the daemon until SIGTERM or SIGINT."),
    "cluster": ("cluster", "The cluster: instances, leases and device shares."),
    "alarm": ("alarm", "Alarms (TMF642): list, inspect, acknowledge, clear, watch."),
    "bill": ("bill", "Bills (TMF678): run the bill run, list, show an invoice, issue."),
    "catalog": ("catalog", "The product catalogue: offerings and their terms."),
    "site": ("site", "Sites."),
    "device": ("device", "Devices."),
    "interface": ("interface", "Interfaces."),
    "link": ("link", "Links."),
    "topology": ("topology", "The graph: import, export, paths, impact."),
    "customer": ("customer", "Customers (minimal CRM)."),
    "account": ("customer", "Billing accounts of customers."),
    "lab": ("lab", "Labs: simulated on 127.0.0.0/8, or (--netns) FRR in network namespaces."),
    "service": ("service", "Services (the types in configs/services) and their transactions."),
    "slice": ("service", "Network slices."),
    "transaction": ("service", "Provisioning transactions."),
    "order": ("order", "Product orders (TMF622)."),
    "sla": ("sla", "SLA compliance of customer services."),
    "token": ("tokens", "API tokens."),
}
COMMAND_MODULES = {name: module for name, (module, _) in COMMANDS.items()}
COMPLETION_VARIABLE = "_OSS_COMPLETE"  # typer's, from the program name
ROOT_OPTIONS_WITH_VALUE = ("--url", "--token", "-o", "--output")


def command_name(argv: list[str]) -> str | None:
    """The top-level command a command line runs (None: help, completion or no command)."""
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ROOT_OPTIONS_WITH_VALUE:
            i += 2
        elif arg.startswith(("--url=", "--token=", "--output=")) or (
            arg.startswith("-o") and len(arg) > 2
        ):
            i += 1
        elif arg.startswith("-"):
            return None
        else:
            return arg
    return None


def register(argv: list[str] | None = None) -> None:
    """Attach the commands `argv` needs to `app` (every command without `argv`, or when the
    shell asks for completions): importing a command's module attaches it. The root help and an
    unknown command need none (LazyCommands lists the others)."""
    if argv is None or COMPLETION_VARIABLE in os.environ:
        modules = set(COMMAND_MODULES.values())
    else:
        name = command_name(argv)
        modules = {COMMAND_MODULES[name]} if name in COMMAND_MODULES else set()
    for module in sorted(modules):
        importlib.import_module(f"oss.cli.{module}")


OUTPUT_OPTIONS = ("-o", "--output")


def root_options_first(argv: list[str]) -> list[str]:
    """`oss lab status -o json` as well as `oss -o json lab status`: `-o` belongs to the root
    command, so wherever it is given it moves (with its value) in front of the command."""
    rest = list(argv)
    moved: list[str] = []
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg == "--":
            break
        if arg in OUTPUT_OPTIONS and i + 1 < len(rest):
            moved += rest[i : i + 2]
            del rest[i : i + 2]
        elif arg.startswith("--output=") or (arg.startswith("-o") and len(arg) > 2):
            moved.append(arg)
            del rest[i]
        else:
            i += 1
    return moved + rest


def main(argv: list[str] | None = None) -> None:
    silence_known_warnings()
    args = root_options_first(sys.argv[1:] if argv is None else argv)
    register(args)
    try:
        app(args=args, prog_name="oss")
    except ClientError as exc:
        error(str(exc))
        sys.exit(exc.exit_code)
    except (ConfigError, InvalidInput) as exc:
        error(str(exc))
        sys.exit(2)
    except OssError as exc:
        error(str(exc))
        sys.exit(1)


def emit(
    ctx: typer.Context, data: Any, columns: list[str] | None = None, title: str | None = None
) -> None:
    show(data, get_context(ctx).output, columns, title)


def read_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ClientError(f"{path}: cannot read: {exc}", exit_code=2) from None


def confirm(what: str, yes: bool) -> None:
    """Ask before `what` unless --yes; with no terminal to ask on, refuse (exit 2)."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise ClientError(f"refusing to {what} without --yes (no terminal to ask on)", exit_code=2)
    typer.confirm(f"{what}?", abort=True)


__all__ = ["Context", "app", "confirm", "emit", "emit_json", "get_context", "main", "read_file"]

if __name__ == "__main__":
    # `python -m oss.cli.main`: the sub-commands attach to the importable `oss.cli.main.app`,
    # not to this `__main__` copy of the module, so run that one.
    from oss.cli.main import main as run_importable

    run_importable()
