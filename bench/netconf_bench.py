"""NETCONF throughput: edit-config + commit pairs per second by the driver vs raw clients, against
the same netconfd (yuma123 under its own sshd, tests/peers/netconfd.py) in the same run.

One unit of work is a pair: edit-config (merge) of one interface's MTU on the candidate, then
commit. Every contender keeps one session open and runs pairs back to back. The budget (at most
`--pairs` pairs or `--seconds` seconds per contender, whichever ends first) is split into
`--rounds` rounds, and the contenders take turns in every round, so that load from elsewhere on
this shared machine falls on all of them alike. After each turn the contender must read back, in
running, the last value it wrote. Contenders:

- driver              drivers.netconf.NetconfDriver, default SSH client (OpenSSH, key auth): on
                      the event loop (drivers/netconf_async.py), no thread per call
- driver-threads      the same driver over OpenSSH through ncclient's RPC layer in worker
                      threads (what a target naming an ncclient device handler gets)
- driver-paramiko     the same driver over paramiko (what password authentication uses)
- ncclient-default    ncclient's `manager.connect` as it comes: its transport thread polls
                      the send queue every TICK (0.1 s), the cap the driver must not inherit
- scrapli             scrapli's NETCONF client (`scrapli.netconf.Netconf`, libscrapli, its
                      default OpenSSH transport)
- scrapli-netconf     the older scrapli_netconf package (system transport), when it imports
                      (it needs scrapli < 2026)

The result: driver / fastest raw client (goal: >= 0.8).

    .venv/bin/python -m bench.netconf_bench [--pairs 200] [--seconds 20] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from drivers.netconf import NetconfDriver, NetconfSession
from tests.peers.netconfd import NetconfServer, running_netconfd

NC_NS = "urn:ietf:params:xml:ns:netconf:base:1.0"
WARMUP_PAIRS = 5


def interfaces(mtu: int) -> str:
    return (
        '<interfaces xmlns="urn:oss:lab"><interface>'
        f"<name>eth1</name><mtu>{mtu}</mtu></interface></interfaces>"
    )


def config(mtu: int) -> str:
    return f'<config xmlns="{NC_NS}">{interfaces(mtu)}</config>'


def mtu_in(xml: str) -> int | None:
    found = re.search(r"<mtu>(\d+)</mtu>", xml)
    return int(found.group(1)) if found else None


@dataclass
class Contender:
    """A client under test: `run(mtus, max_seconds)` does edit-config + commit for each MTU in
    turn until the time is up and returns how many it did; `running_mtu()` reads back."""

    name: str
    run: Callable[[list[int], float], int]
    running_mtu: Callable[[], int | None]
    close: Callable[[], None]
    pairs: int = 0
    seconds: float = 0.0
    next_mtu: int = field(default=1000)  # cycles through 1000..8999, all valid MTUs

    @property
    def rate(self) -> float:
        return self.pairs / self.seconds if self.seconds else 0.0

    def turn(self, max_pairs: int, max_seconds: float) -> None:
        mtus = [1000 + (self.next_mtu - 1000 + i) % 8000 for i in range(max_pairs)]
        start = time.perf_counter()
        done = self.run(mtus, max_seconds)
        self.seconds += time.perf_counter() - start
        self.pairs += done
        if done:
            self.next_mtu = 1000 + (mtus[done - 1] - 999) % 8000
            if self.running_mtu() != mtus[done - 1]:
                raise AssertionError(f"{self.name}: running lacks the last value {mtus[done - 1]}")


def sync_runner(pair: Callable[[int], None]) -> Callable[[list[int], float], int]:
    def run(mtus: list[int], max_seconds: float) -> int:
        deadline = time.perf_counter() + max_seconds
        done = 0
        for mtu in mtus:
            if time.perf_counter() > deadline:
                break
            pair(mtu)
            done += 1
        return done

    return run


def driver_contender(
    name: str, server: NetconfServer, loop: asyncio.AbstractEventLoop, options: dict[str, str]
) -> Contender:
    driver = NetconfDriver(max_workers=4)
    target = server.target(name, timeout_s=30.0, options=options)
    borrowed = driver.connect(target)
    session: NetconfSession = loop.run_until_complete(borrowed.__aenter__())

    async def pairs(mtus: list[int], max_seconds: float) -> int:
        # the whole turn runs in one coroutine, as calls would inside the daemon
        deadline = time.perf_counter() + max_seconds
        done = 0
        for mtu in mtus:
            if time.perf_counter() > deadline:
                break
            await session.edit_config(config(mtu), target="candidate")
            await session.commit()
            done += 1
        return done

    async def close() -> None:
        await borrowed.__aexit__(None, None, None)
        await driver.close()

    return Contender(
        name,
        run=lambda mtus, max_seconds: loop.run_until_complete(pairs(mtus, max_seconds)),
        running_mtu=lambda: mtu_in(loop.run_until_complete(session.get_config("running"))),
        close=lambda: loop.run_until_complete(close()),
    )


def ncclient_default_contender(server: NetconfServer) -> Contender:
    from ncclient import manager

    m = manager.connect(
        host=server.host,
        port=server.port,
        username=server.username,
        key_filename=str(server.private_key),
        hostkey_b64=server.host_key_line.split()[1],  # verified: the server's own key
        allow_agent=False,
        look_for_keys=False,
        timeout=30,
    )

    def pair(mtu: int) -> None:
        m.edit_config(config(mtu), target="candidate")
        m.commit()

    return Contender(
        "ncclient-default",
        run=sync_runner(pair),
        running_mtu=lambda: mtu_in(m.get_config("running").xml),
        close=m.close_session,
    )


def scrapli_contender(server: NetconfServer) -> Contender:
    from scrapli.auth import Options as AuthOptions
    from scrapli.netconf import DatastoreType, Netconf
    from scrapli.transport import BinOptions

    conn = Netconf(
        server.host,
        port=server.port,
        auth_options=AuthOptions(
            username=server.username, private_key_path=str(server.private_key)
        ),
        transport_options=BinOptions(
            known_hosts_path=str(server.known_hosts), enable_strict_key=True
        ),
    )
    conn.open()

    def pair(mtu: int) -> None:
        for result in (
            conn.edit_config(config=interfaces(mtu), target=DatastoreType.CANDIDATE),
            conn.commit(),
        ):
            if result.failed:
                raise RuntimeError(f"scrapli: {result.result}")

    return Contender(
        "scrapli",
        run=sync_runner(pair),
        running_mtu=lambda: mtu_in(conn.get_config(source=DatastoreType.RUNNING).result),
        close=conn.close,
    )


def scrapli_netconf_contender(server: NetconfServer) -> Contender:
    from scrapli_netconf.driver import NetconfDriver as ScrapliNetconf

    conn: Any = ScrapliNetconf(
        host=server.host,
        port=server.port,
        auth_username=server.username,
        auth_private_key=str(server.private_key),
        auth_strict_key=True,
        ssh_known_hosts_file=str(server.known_hosts),
        preferred_netconf_version="1.0",  # its 1.1 framing stalls against netconfd
        timeout_ops=30,
    )
    conn.open()

    def pair(mtu: int) -> None:
        for response in (conn.edit_config(config(mtu), target="candidate"), conn.commit()):
            if response.failed:
                raise RuntimeError(f"scrapli-netconf: {response.result}")

    return Contender(
        "scrapli-netconf",
        run=sync_runner(pair),
        running_mtu=lambda: mtu_in(conn.get_config(source="running").result),
        close=conn.close,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200, help="at most this many pairs each")
    parser.add_argument("--seconds", type=float, default=20.0, help="at most this long each")
    parser.add_argument("--rounds", type=int, default=4, help="turns each contender takes")
    args = parser.parse_args()

    loop = asyncio.new_event_loop()
    with running_netconfd() as server:
        contenders: list[Contender] = [
            driver_contender("driver", server, loop, {"ssh_client": "openssh"}),
            driver_contender(
                "driver-threads",
                server,
                loop,
                {"ssh_client": "openssh", "ncclient_device": "default"},
            ),
            driver_contender("driver-paramiko", server, loop, {"ssh_client": "paramiko"}),
            ncclient_default_contender(server),
        ]
        for make in (scrapli_contender, scrapli_netconf_contender):
            try:
                contenders.append(make(server))
            except Exception as exc:  # noqa: BLE001  (an optional raw client may not import)
                print(f"{make.__name__}: skipped ({type(exc).__name__}: {exc})")
        try:
            for contender in contenders:
                contender.run([900 + i for i in range(WARMUP_PAIRS)], 60.0)
            for _ in range(args.rounds):
                for contender in contenders:
                    contender.turn(max(1, args.pairs // args.rounds), args.seconds / args.rounds)
        finally:
            for contender in contenders:
                contender.close()
    loop.close()

    print(
        f"edit-config + commit pairs/s against netconfd, same run "
        f"(<= {args.pairs} pairs or {args.seconds:g} s each, in {args.rounds} rounds)"
    )
    for c in contenders:
        print(f"  {c.name:<17} {c.rate:8.1f} pairs/s  ({c.pairs} pairs in {c.seconds:.2f} s)")
    driver = contenders[0]
    raw = [c for c in contenders if not c.name.startswith("driver")]
    fastest = max(raw, key=lambda c: c.rate)
    default = next(c for c in raw if c.name == "ncclient-default")
    print(
        f"driver / fastest raw client ({fastest.name}): {driver.rate / fastest.rate:.2f}"
        "  (goal >= 0.80)"
    )
    print(f"driver / ncclient-default: {driver.rate / default.rate:.1f}x")


if __name__ == "__main__":
    main()
