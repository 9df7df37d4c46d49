"""SNMP walk throughput: the driver (each polling backend) vs `snmpbulkwalk`, same snmpd, same run.

One unit of work is a "both-table walk": a GETBULK walk of IF-MIB's ifTable and one of its
ifXTable. snmpbulkwalk does it as two processes (one per walk), the way a script polling with
the Net-SNMP tools does; the driver does it as two `walk()` calls on a pooled session. Each
contender runs sequentially for a bounded time; the ratios driver/snmpbulkwalk are the result
(goal: >= 2x), measured against the same agent in the same run because the machine is shared.

    .venv/bin/python -m bench.snmp_bench [--seconds 5] [--security v2c v3]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import SecretStr

from drivers import snmp_mib
from drivers.base import Target
from drivers.credentials import Credentials, SnmpCredentials
from drivers.snmp import Backend, SnmpDriver
from tests.peers.snmpd import SnmpdServer, running_snmpd

TABLES = (snmp_mib.IF_TABLE, snmp_mib.IF_X_TABLE)
REPETITIONS = 25
V3_USER = "oss-sha256"  # SHA-256 + AES-256


@dataclass(frozen=True)
class Result:
    name: str
    pairs: int
    seconds: float
    rows: int  # varbinds in one both-table walk: every contender must agree

    @property
    def rate(self) -> float:
        return self.pairs / self.seconds


def _cli_security(server: SnmpdServer, security: str) -> list[str]:
    if security == "v2c":
        return ["-v2c", "-c", server.ro_community]
    return server.user(V3_USER).cli_args()


def _target(server: SnmpdServer, security: str) -> Target:
    if security == "v2c":
        snmp = SnmpCredentials(version="2c", community=SecretStr(server.ro_community))
    else:
        user = server.user(V3_USER)
        snmp = SnmpCredentials(
            version="3",
            user=user.name,
            auth_protocol="SHA256",
            auth_key=SecretStr(user.auth_key),
            priv_protocol="AES256",
            priv_key=SecretStr(user.priv_key),
        )
    return Target(
        "bench",
        server.host,
        server.port,
        Credentials(snmp=snmp),
        timeout_s=10,
        options={"max_repetitions": REPETITIONS},
    )


def bench_snmpbulkwalk(server: SnmpdServer, security: str, seconds: float) -> Result:
    security_args = _cli_security(server, security)
    env = server.cli_env()

    def argv_for(root: str) -> list[str]:
        return [
            "snmpbulkwalk",
            *security_args,
            "-On",
            "-Oq",
            f"-Cr{REPETITIONS}",
            server.address,
            root,
        ]

    def both_tables() -> int:
        rows = 0
        for root in TABLES:
            out = subprocess.run(
                argv_for(root), capture_output=True, text=True, env=env, check=True, timeout=30
            )
            rows += len([line for line in out.stdout.splitlines() if line.strip()])
        return rows

    rows = both_tables()  # warm-up, and the row count
    pairs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        both_tables()
        pairs += 1
    return Result("snmpbulkwalk", pairs, time.perf_counter() - start, rows)


async def bench_driver(
    server: SnmpdServer, security: str, backend: Backend, seconds: float
) -> Result:
    target = _target(server, security)
    async with SnmpDriver(backend=backend) as driver, driver.connect(target) as snmp:

        async def both_tables() -> int:
            rows = 0
            for root in TABLES:
                rows += len(await snmp.walk(root))
            return rows

        rows = await both_tables()  # warm-up (v3 discovery), and the row count
        pairs, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            await both_tables()
            pairs += 1
        return Result(f"driver ({backend})", pairs, time.perf_counter() - start, rows)


def run(seconds: float, securities: Sequence[str]) -> None:
    with running_snmpd() as server:
        print(f"snmpd {server.address}; {seconds:g} s per contender; max-repetitions {REPETITIONS}")
        for security in securities:
            label = "v2c" if security == "v2c" else f"v3 authPriv {V3_USER} (SHA-256, AES-256)"
            baseline = bench_snmpbulkwalk(server, security, seconds)
            results = [
                baseline,
                asyncio.run(bench_driver(server, security, "gufo", seconds)),
                asyncio.run(bench_driver(server, security, "pysnmp", seconds)),
            ]
            print(f"\n{label}: both-table IF-MIB walks ({baseline.rows} varbinds each)")
            for result in results:
                agree = "" if result.rows == baseline.rows else f"  ROWS DIFFER: {result.rows}"
                ratio = result.rate / baseline.rate
                print(
                    f"  {result.name:<18} {result.rate:9.1f} walks/s"
                    f"  ({result.pairs} in {result.seconds:.1f} s)"
                    f"  ratio vs snmpbulkwalk {ratio:5.2f}x{agree}"
                )
        print("\ngoal: driver (default backend, gufo) >= 2.00x snmpbulkwalk")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=5.0, help="per contender (max 30)")
    parser.add_argument(
        "--security", nargs="+", choices=["v2c", "v3"], default=["v2c", "v3"], help="SNMP security"
    )
    args = parser.parse_args()
    run(min(args.seconds, 30.0), args.security)


if __name__ == "__main__":
    main()
