"""The console in a real browser: Debian's Chromium (`/usr/bin/chromium`, installed by `make
system-deps`; never a browser Playwright downloads) driven by Playwright, against a real `oss
serve` and the simulated metro lab, one of each for the whole module (they take seconds to
start; the tests share them and leave them as they found them).

Screenshots of each step go to `$OSS_BROWSER_SHOTS` when set, else to a temporary folder named in
the test's output; `OSS_CONSOLE_PNG=docs/console.png` also writes the README's picture.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    Dialog,
    Page,
    Playwright,
    sync_playwright,
)

from oss.demo import OFFERING, ORDERS
from tests.e2e.test_slice_on_metro import METRO, daemon_env, lab_up
from tests.peers.daemon import Daemon
from tests.peers.lab_process import lab_state_dir

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1600, "height": 1000}
WAIT_MS = 15_000  # page loads and API round trips
LIVE_MS = 60_000  # what waits on the lab: a poll (2 s here), the alarm, the stream
# Records CSP violations from the page's first script on (an init script is not subject to the
# page's CSP).
CSP_PROBE = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`);
});
"""


@dataclass
class ConsoleDaemon:
    daemon: Daemon
    operator: str
    viewer: str
    lab_dir: Path
    service: dict[str, Any]  # the slice a customer ordered (its product, its monthly price)

    @property
    def url(self) -> str:
        return self.daemon.url

    def api(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token or self.operator}"},
            timeout=20,
        )


@dataclass
class Session:
    """One browser (its own fresh profile) logged in to the console."""

    context: BrowserContext
    page: Page
    name: str
    console_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def csp_violations(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__cspViolations || []")
        return found + [m for m in self.console_errors if "Content Security Policy" in m]

    def js(self, expression: str, arg: Any = None) -> Any:
        return self.page.evaluate(expression, arg)

    def wait(self, predicate: str, arg: Any = None, timeout: float = WAIT_MS) -> None:
        self.page.wait_for_function(predicate, arg=arg, timeout=timeout)


@pytest.fixture(scope="module")
def console_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleDaemon]:
    root = tmp_path_factory.mktemp("console")
    with lab_state_dir(root / "lab") as lab_dir:
        daemon = Daemon(
            state_dir=root / "daemon",
            extra_args=["--topology", str(METRO)],
            env=daemon_env(OSS_ASSURANCE__POLLING__INTERVAL_S="2"),
        )
        daemon.start()
        try:
            operator = daemon.create_token("operator")
            viewer = daemon.create_token("viewer")
            daemon.token = operator
            lab_up(daemon, lab_dir)
            service = order_slice(daemon.url, operator)
            yield ConsoleDaemon(daemon, operator, viewer, lab_dir, service)
        finally:
            daemon.kill()


def order_slice(url: str, token: str) -> dict[str, Any]:
    """What the map's panels show money for: a customer, an account and a slice ordered
    through the BSS (TMF622) from site north to site south, provisioned on the lab."""
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as api:
        made = api.post("/api/v1/customers", json={"id": "acme", "name": "ACME Corp"})
        assert made.status_code == 201, made.text
        account = {"id": "acme-main", "customer": "acme", "name": "ACME", "currency": "EUR"}
        made = api.post("/api/v1/accounts", json=account)
        assert made.status_code == 201, made.text
        item = {
            "id": "1",
            "action": "add",
            "productOffering": {"id": OFFERING},
            "product": {
                "productCharacteristic": [
                    {"name": "from", "value": "north"},
                    {"name": "to", "value": "south"},
                ]
            },
        }
        body = {"billingAccount": {"id": "acme-main"}, "productOrderItem": [item]}
        order = api.post(ORDERS, json=body)
        assert order.status_code == 201, order.text
        deadline = time.monotonic() + 90
        state = order.json()
        while state["state"] not in ("completed", "failed", "cancelled", "rejected"):
            assert time.monotonic() < deadline, state
            time.sleep(0.5)
            state = api.get(f"{ORDERS}/{state['id']}").json()
        assert state["state"] == "completed", state
        name = state["productOrderItem"][0]["product"]["realizingService"][0]["name"]
        found: dict[str, Any] = api.get(f"/api/v1/services/{name}").json()
        return found


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    assert CHROMIUM.exists(), "Debian's chromium is missing: make system-deps installs it"
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("OSS_BROWSER_SHOTS")
    if folder:
        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("console-shots")


Opener = Callable[..., Session]


@pytest.fixture
def open_console(playwright: Playwright, console_daemon: ConsoleDaemon) -> Iterator[Opener]:
    """Opens a fresh browser session, logs in with the token and waits for the map."""
    sessions: list[Session] = []
    profiles: list[tempfile.TemporaryDirectory[str]] = []

    def opener(token: str, name: str = "operator", *, login: bool = True) -> Session:
        profile = tempfile.TemporaryDirectory(prefix="oss-chromium-")
        profiles.append(profile)
        context = playwright.chromium.launch_persistent_context(
            profile.name,
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=VIEWPORT,  # type: ignore[arg-type]
        )
        context.add_init_script(CSP_PROBE)
        page = context.pages[0] if context.pages else context.new_page()
        session = Session(context, page, name)
        sessions.append(session)
        page.on("console", lambda m: _keep_error(session, m))
        page.on("dialog", lambda d: _refuse_dialog(session, d))
        page.goto(console_daemon.url + "/ui/")
        if login:
            log_in(session, token)
        return session

    yield opener
    for session in sessions:
        session.context.close()
    for profile in profiles:
        profile.cleanup()


def log_in(session: Session, token: str) -> None:
    page = session.page
    page.wait_for_selector("#login-token", state="visible", timeout=WAIT_MS)
    page.fill("#login-token", token)
    page.click("#login-submit")
    page.wait_for_selector("body[data-map-state=ready]", timeout=WAIT_MS)


def _keep_error(session: Session, message: ConsoleMessage) -> None:
    if message.type == "error":
        session.console_errors.append(message.text)


def _refuse_dialog(session: Session, dialog: Dialog) -> None:
    session.dialogs.append(dialog.message)
    dialog.dismiss()
