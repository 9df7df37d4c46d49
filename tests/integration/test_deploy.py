"""docs/deploy/ against real peers: `postgresql.sql` on a real PostgreSQL makes a role the
daemon's migrations run as (no superuser), and the image's health check command, run as the
container would run it, tells a ready `oss serve` from one that is gone."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from oss.store import Database
from tests.peers.daemon import Daemon
from tests.peers.postgres import PostgresServer, pg_bindir
from tests.unit.test_deploy_docs import DEPLOY, dockerfile

pytestmark = pytest.mark.integration


async def test_the_database_set_up_lets_its_owner_migrate(postgres: PostgresServer) -> None:
    bindir = pg_bindir()
    assert bindir is not None
    psql = [
        str(bindir / "psql"),
        *("-h", postgres.host, "-p", str(postgres.port), "-U", postgres.user, "-d", "postgres"),
        *("-v", "ON_ERROR_STOP=1", "-v", "password=it's secret"),
        *("-v", "role=oss_deploy", "-v", "dbname=oss_deploy"),
        *("-f", str(DEPLOY / "postgresql.sql")),
    ]
    made = await asyncio.to_thread(subprocess.run, psql, capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    url = f"postgresql+asyncpg://oss_deploy@{postgres.host}:{postgres.port}/oss_deploy"

    db = Database(url)
    try:
        await db.migrate()  # every migration, the fencing function's included, as the owner
        async with db.read() as session:
            row = (
                await session.execute(
                    text(
                        "SELECT r.rolsuper, pg_get_userbyid(p.proowner), current_user"
                        " FROM pg_proc p, pg_roles r"
                        " WHERE p.proname = 'oss_fence' AND r.rolname = current_user"
                    )
                )
            ).one()
    finally:
        await db.close()
    assert tuple(row) == (False, "oss_deploy", "oss_deploy")


def health_check_command() -> list[str]:
    [check] = dockerfile(final_stage_only=True)["HEALTHCHECK"]
    argv: list[str] = json.loads(check.split("CMD", 1)[1])
    assert argv[0] == "python"
    return [sys.executable, *argv[1:]]


def test_the_image_health_check_follows_readyz(tmp_path: Path) -> None:
    command = health_check_command()
    daemon = Daemon(tmp_path).start()
    env = {**os.environ, "OSS_API__PORT": str(daemon.port)}
    try:
        ready = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    finally:
        code, _ = daemon.stop()
    assert ready.returncode == 0, ready.stderr
    assert code == 0
    gone = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    assert gone.returncode != 0
    assert "Connection refused" in gone.stderr
