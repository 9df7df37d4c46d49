"""Where the daemon's time goes for one API call, under cProfile: the daemon's parts assembled
in this process over a state directory (`oss.app.assemble`, as the integration tests do), its
FastAPI app over httpx's ASGI transport, the call repeated, each after an optional change (an
alarm cleared: what changes the map). Run it on a state no `oss serve` holds.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from oss.api import create_app
from oss.app import assemble
from oss.auth_roles import Role
from oss.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(httpx.__file__).resolve().parents[1]  # the venv's site-packages
PROJECT = r"/(oss|topology|bss_bridge|drivers)/"  # pstats restriction: the project's files


async def profile_call(
    state_dir: Path, path: str, clear: Sequence[int], top: int = 20
) -> tuple[float, str]:
    """The calls' mean wall time (profiled) and the profile's heaviest functions by cumulative
    time. One call per alarm id in `clear`, each after that alarm is cleared."""
    profiler = cProfile.Profile()
    async with assemble(load_settings(None, state_dir=state_dir)) as daemon:
        app = create_app(daemon)
        token, _ = await daemon.tokens.create(name="profile", role=Role.OPERATOR, actor="bench")
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://oss.bench",
            headers={"Authorization": f"Bearer {token}"},
        ) as client:
            (await client.get(path)).raise_for_status()  # warm
            took = 0.0
            for alarm in clear:
                patched = await client.patch(
                    f"/tmf-api/alarm/v4/alarm/{alarm}", json={"state": "cleared"}
                )
                patched.raise_for_status()
                started = time.perf_counter()
                profiler.enable()
                answer = await client.get(path)
                profiler.disable()
                took += time.perf_counter() - started
                answer.raise_for_status()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    out.write("the project's functions by cumulative time:\n")
    stats.sort_stats("cumulative").print_stats(PROJECT, top)
    out.write("every function by its own time:\n")
    stats.sort_stats("tottime").print_stats(top)
    text = out.getvalue().replace(str(ROOT) + "/", "").replace(str(SITE) + "/", "")
    return took / max(1, len(clear)), text
