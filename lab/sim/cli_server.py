"""The simulated device's SSH CLI, shaped for netmiko's `linux` device type.

A session starts unprivileged with the prompt `admin@r1:~$ `; `sudo -s` asks for the lab
password and gives `root@r1:~# ` (netmiko's config mode); `exit` goes back, and exits the
session from the unprivileged prompt. Commands:

    show interfaces                 one line per interface: admin/oper, mtu, speed, description
    show interface NAME             one interface with its counters
    show running-config             the configuration as `set` lines that can be pasted back,
                                    in schema order (`lab.sim.schema`)
    show version                    sysDescr and uptime
    ping [-c N] [-i S] [-W S] ADDR  iputils' ping, answered from the lab's route to ADDR
                                    (`lab.sim.ping`): latency and loss faults show in it
    set LEAF-PATH VALUE             (root) change a leaf, e.g.
                                    set interfaces/interface[name=eth1]/config/description "to r2"
    delete PATH                     (root) remove a leaf, or a list entry or container with
                                    everything below it
    help                            this list

Changes apply at once (like a shell, there is no commit step) through the device's datastores,
so each is validated like a NETCONF edit of running (the whole configuration: references,
uniqueness), refused while a NETCONF session locks running, and visible over NETCONF, gNMI and
SNMP. With a PTY, asyncssh's line editor echoes input; an exec request (`ssh host show
interfaces`) runs one unprivileged command. The device's `reply_delay_s` holds back every
command's output that long (the command itself runs at once).
"""

from __future__ import annotations

import logging
import shlex
from typing import Any

import asyncssh

from lab.sim import ping, schema
from lab.sim.datastore import Datastores, RpcFailure, coerce_leaf
from lab.sim.model import SimDevice, iface_path
from lab.sim.netconf_xml import text_of
from lab.sim.sshd import LabLogin, SshListener, SshService

log = logging.getLogger(__name__)

HELP = """\
show interfaces | show interface NAME | show running-config | show version
ping [-c COUNT] [-i INTERVAL] [-W TIMEOUT] ADDRESS
set LEAF-PATH VALUE     (after sudo -s)  e.g. set interfaces/interface[name=eth1]/config/mtu 9000
delete PATH             (after sudo -s)  a leaf, or an entry or container and all below it
sudo -s | exit | help
"""


def _rate(bps: int) -> str:
    for unit, size in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if bps >= size and bps % size == 0:
            return f"{bps // size}{unit}"
    return str(bps)


class CliServer(SshService):
    """One device's SSH CLI."""

    def __init__(
        self,
        device: SimDevice,
        datastores: Datastores,
        *,
        login: LabLogin,
        options: asyncssh.SSHServerConnectionOptions,
        router: ping.Router | None = None,
        address: str = "127.0.0.1",
    ) -> None:
        self.device = device
        self.datastores = datastores
        self.router = router  # what `ping` reaches; None: nothing
        self.address = address  # where the device's answers come from
        self._login = login
        self._listener = SshListener(login=login, options=options, handler=self._serve)

    async def _serve(self, process: asyncssh.SSHServerProcess[Any]) -> None:
        shell = _Shell(self, process)
        status = 0
        try:
            status = await shell.run()
        except (asyncssh.Error, ConnectionError) as exc:
            log.debug("%s: CLI session ended: %s", self.device.name, exc)
        finally:
            if not process.is_closing():
                process.exit(status)


class _Shell:
    def __init__(self, server: CliServer, process: asyncssh.SSHServerProcess[Any]) -> None:
        self._device = server.device
        self._ds = server.datastores
        self._login = server._login
        self._server = server
        self._process = process
        self._root = process.get_extra_info("username") == "root"

    @property
    def _prompt(self) -> str:
        if self._root:
            return f"root@{self._device.name}:~# "
        return f"{self._login.username}@{self._device.name}:~$ "

    def _write(self, text: str) -> None:
        self._process.stdout.write(text)

    async def run(self) -> int:
        if self._process.subsystem is not None:
            self._process.stderr.write("no subsystems here\n")
            return 1
        if self._process.command is not None:
            output, ok = await self.run_command(self._process.command.strip())
            await self._device.delay_reply()
            self._write(output)
            return 0 if ok else 1
        self._write(self._prompt)
        while True:
            try:
                line = await self._process.stdin.readline()
            except asyncssh.TerminalSizeChanged:
                continue
            except (asyncssh.BreakReceived, asyncssh.SignalReceived):
                self._write("\n" + self._prompt)
                continue
            if not line:
                return 0
            command = line.strip()
            if command in ("exit", "logout", "quit"):
                if self._root and self._login.username != "root":
                    self._root = False
                    self._write(self._prompt)
                    continue
                return 0
            if command in ("sudo -s", "sudo -i", "sudo su", "sudo su -"):
                await self._sudo()
            elif command:
                output, _ = await self.run_command(command)
                await self._device.delay_reply()
                self._write(output)
            self._write(self._prompt)

    async def _sudo(self) -> None:
        if self._root:
            return
        self._write(f"[sudo] password for {self._login.username}: ")
        channel: Any = self._process.channel
        echo = self._process.get_terminal_type() is not None
        if echo:
            channel.set_echo(False)
        try:
            password = (await self._process.stdin.readline()).rstrip("\r\n")
        finally:
            if echo:
                channel.set_echo(True)
        self._write("\n")
        if self._login.accepts(self._login.username, password):
            self._root = True
        else:
            self._write("Sorry, try again.\nsudo: 1 incorrect password attempt\n")

    # --- commands ----------------------------------------------------------------------------

    async def run_command(self, command: str) -> tuple[str, bool]:
        """A command's output and whether it succeeded; `ping` takes its time."""
        if command.split(maxsplit=1)[:1] == ["ping"]:
            request = ping.parse(command.split()[1:])
            if isinstance(request, str):
                return request, False
            router = self._server.router or (lambda _: None)
            return await ping.ping(request, self._server.address, router)
        return self.execute(command)

    def execute(self, command: str) -> tuple[str, bool]:
        """A command's output and whether it succeeded."""
        try:
            words = shlex.split(command)
        except ValueError as exc:
            return f"error: {exc}\n", False
        if not words:
            return "", True
        verb, args = words[0], words[1:]
        if verb == "help" or verb == "?":
            return HELP, True
        if verb == "show":
            return self._show(args)
        if verb in ("set", "delete"):
            if not self._root:
                return (
                    f"error: permission denied: '{verb}' needs configuration mode (sudo -s)\n",
                    False,
                )
            return self._configure(verb, args)
        return f"-sh: {verb}: command not found\n", False

    def _show(self, args: list[str]) -> tuple[str, bool]:
        what = " ".join(args)
        if what in ("interfaces", "interface"):
            return self._interfaces(), True
        if len(args) == 2 and args[0] in ("interface", "interfaces"):
            if args[1] not in self._device.interfaces:
                return f"error: no interface {args[1]}\n", False
            return self._interface(args[1]), True
        if what in ("running-config", "run", "configuration"):
            lines = [
                f"set {_word(path)} {shlex.quote(text_of(value))}"
                for path, value in schema.sorted_leaves(self._device.running)
            ]
            return "\n".join(lines) + "\n", True
        if what == "version":
            uptime_s = self._device.uptime_ticks() // 100
            return (
                f"{self._device.sys_descr}\nhostname {self._device.name}\nuptime {uptime_s}s\n",
                True,
            )
        return f"error: unknown show command '{what}'\n", False

    def _interfaces(self) -> str:
        rows = [("Interface", "Admin", "Oper", "MTU", "Speed", "Description")]
        for name, iface in self._device.interfaces.items():
            rows.append(
                (
                    name,
                    "up" if self._device.admin_up(name) else "down",
                    "up" if self._device.oper_up(name) else "down",
                    str(self._device.running.get(iface_path(name, "config/mtu"), 1500)),
                    _rate(iface.speed_bps),
                    str(self._device.running.get(iface_path(name, "config/description"), "")),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
        return "".join(
            (
                "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
                + "  "
                + row[-1]
            ).rstrip()
            + "\n"
            for row in rows
        )

    def _interface(self, name: str) -> str:
        iface = self._device.interfaces[name]
        running = self._device.running
        lines = [
            f"{name} (ifIndex {iface.index})",
            f"  admin {'up' if self._device.admin_up(name) else 'down'}, "
            f"oper {'up' if self._device.oper_up(name) else 'down'}",
            f"  mtu {running.get(iface_path(name, 'config/mtu'), 1500)}",
            f"  speed {_rate(iface.speed_bps)}",
            f"  description: {running.get(iface_path(name, 'config/description'), '')}",
        ]
        lines.extend(
            f"  {counter}: {value}" for counter, value in self._device.counters(name).items()
        )
        return "\n".join(lines) + "\n"

    def _configure(self, verb: str, args: list[str]) -> tuple[str, bool]:
        if not args:
            return f"error: usage: {verb} PATH{' VALUE' if verb == 'set' else ''}\n", False
        try:
            resolved = schema.resolve(args[0].strip("/"))
        except schema.PathError as exc:
            return f"error: unknown path '{args[0]}': {exc.message}\n", False
        path = resolved.path
        leaves = self._ds.get("running")
        try:
            if verb == "set":
                if not resolved.is_leaf:
                    return f"error: {path} is not a leaf; set takes a leaf path\n", False
                if len(args) != 2:
                    return "error: usage: set LEAF-PATH VALUE (quote values with spaces)\n", False
                leaves[path] = coerce_leaf(path, args[1])
                schema.fill_keys(leaves)
            else:
                if len(args) != 1:
                    return "error: usage: delete PATH\n", False
                doomed = schema.below(leaves, path)
                if not doomed:
                    return f"error: {path} is not set\n", False
                for leaf in doomed:
                    del leaves[leaf]
            self._ds.write_running(leaves, who="the CLI")
        except RpcFailure as failure:
            where = f" (at {failure.path})" if failure.path else ""
            return f"error: {failure.message}{where}\n", False
        return "", True


def _word(text: str) -> str:
    """`text` as one shell word: as it is unless it needs quoting (paths keep their brackets)."""
    try:
        words = shlex.split(text)
    except ValueError:  # an unbalanced quote
        words = []
    return text if words == [text] else shlex.quote(text)
