"""`-o/--output` belongs to the root command but may be given after the command too."""

from __future__ import annotations

import pytest

from oss.cli.main import root_options_first


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["lab", "status", "-o", "json"], ["-o", "json", "lab", "status"]),
        (["lab", "status", "--output", "json"], ["--output", "json", "lab", "status"]),
        (["device", "list", "--output=json"], ["--output=json", "device", "list"]),
        (["device", "list", "-ojson"], ["-ojson", "device", "list"]),
        (["-o", "json", "device", "list"], ["-o", "json", "device", "list"]),
        (["device", "list"], ["device", "list"]),
        (
            ["service", "create", "x", "--", "-o", "json"],
            ["service", "create", "x", "--", "-o", "json"],
        ),
        (["lab", "status", "-o"], ["lab", "status", "-o"]),  # no value: typer says so
    ],
)
def test_output_moves_in_front_of_the_command(argv: list[str], expected: list[str]) -> None:
    assert root_options_first(argv) == expected
