"""What the inventory commands (site, device, interface, link) share: their tables' columns
and `--limit`. Importing it attaches no command."""

from typing import Annotated

import typer

DEVICE_COLUMNS = ["name", "role", "platform", "site", "mgmt_address", "state"]
LINK_COLUMNS = ["id", "a", "b", "capacity_bps", "latency_us", "state"]
INTERFACE_COLUMNS = ["device", "name", "speed_bps", "admin_state", "oper_state", "description"]

Limit = Annotated[int | None, typer.Option("--limit", min=1, help="at most this many rows")]
