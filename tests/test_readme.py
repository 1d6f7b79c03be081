"""The README stays true: every setting and every command is documented."""

from __future__ import annotations

import argparse
import re

from bot.cli.main import _parser
from bot.config import Settings
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_has_a_row_in_the_configuration_table() -> None:
    table = README[README.index("## Configuration"):README.index("## Commands")]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", "\n".join(row.split("|")[1] for row in rows)))
    missing = sorted(name.upper() for name in Settings.model_fields if name.upper() not in documented)
    assert not missing, f"settings missing from the README's configuration table: {missing}"


def test_every_command_is_in_the_commands_table() -> None:
    table = README[README.index("## Commands"):]
    table = table[:table.index("\n## ")]
    subparsers = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = sorted(name for name in subparsers.choices if f"python bot.py {name}" not in table)
    assert not missing, f"commands missing from the README's commands table: {missing}"
