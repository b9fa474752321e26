"""Reading the dashboard's server-rendered HTML in tests without a browser."""

from __future__ import annotations

import re

_ROW = re.compile(r'<tr data-player-id="([^"]+)">(.*?)</tr>', re.DOTALL)
_CELL = re.compile(r"<td[^>]*>(.*?)</td>", re.DOTALL)


def field_text(html: str, name: str) -> str:
    """The text of the first element marked ``data-field=name``."""
    found = re.search(rf'data-field="{re.escape(name)}"[^>]*>([^<]*)<', html)
    assert found, f"no data-field={name} in the page"
    return found.group(1).strip()


def csrf_token(html: str) -> str:
    """The Cancel form's token."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no Cancel form in the page"
    return found.group(1)


def player_rows(html: str) -> list[tuple[str, list[str]]]:
    """Each player row of a job page: its id and the raw HTML of its cells, in page order."""
    return [(player_id, _CELL.findall(row)) for player_id, row in _ROW.findall(html)]
