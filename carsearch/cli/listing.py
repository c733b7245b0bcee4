"""``carsearch plugins``: the installed plugins, by entry-point group."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

from carsearch import plugins
from carsearch.cli.common import add_json_flag


def add_plugins(commands: Any) -> None:
    listing = commands.add_parser(
        "plugins",
        help="list installed plugins and their packages (exit 1 if one is missing or fails)",
    )
    listing.add_argument(
        "--check",
        action="store_true",
        help="import and instantiate each plugin (imports torch); without it, each plugin's "
        "module is only looked up",
    )
    add_json_flag(listing, "one JSON object per plugin")
    listing.set_defaults(handler=cmd_plugins)


def cmd_plugins(args: argparse.Namespace) -> int:
    check = plugins.check_loads if args.check else plugins.check_found
    rows = [
        {**dataclasses.asdict(info), "group": info.group, "error": check(info)}
        for kind in plugins.GROUPS
        for info in sorted(plugins.entries(kind), key=lambda info: (info.name, info.package))
    ]
    if args.json:
        print("\n".join(json.dumps(row) for row in rows))
    else:
        print(format_plugins(rows, ok="loads" if args.check else "found"))
    return 1 if any(row["error"] for row in rows) else 0


def format_plugins(rows: list[dict[str, Any]], *, ok: str) -> str:
    """Each entry-point group, then one line per plugin: name, package, entry point, status."""
    cells = [(row["name"], f"{row['package']} {row['version']}", row["value"]) for row in rows]
    widths = [max((len(cell[i]) for cell in cells), default=0) for i in range(3)]
    lines = []
    for group in plugins.GROUPS.values():
        lines.append(group)
        for row, cell in zip(rows, cells, strict=True):
            if row["group"] == group:
                status = f"FAILS: {row['error']}" if row["error"] else ok
                padded = "  ".join(
                    text.ljust(width) for text, width in zip(cell, widths, strict=True)
                )
                lines.append(f"  {padded}  {status}")
        if lines[-1] == group:
            lines.append("  (none installed)")
    return "\n".join(lines)
