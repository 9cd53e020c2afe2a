"""A self-contained HTML page for a selection run: summary table and the PNG plots beside it."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path

from fntk.io import atomic_write_text

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 980px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; display: block; max-width: 100%;
        overflow-x: auto; }
td, th { border-bottom: 1px solid #ddd; padding: 4px 12px; text-align: left;
         overflow-wrap: anywhere; }
figure { margin: 1.5em 0; } img { max-width: 100%; }
.thumbs { display: flex; flex-wrap: wrap; gap: 8px; }
.thumbs figure { margin: 0; width: 150px; font-size: 0.8em; }
"""


def render_report(
    path: str | Path,
    *,
    title: str,
    summary: Mapping[str, object],
    figures: Sequence[tuple[str, str]],
    picked_rows: Sequence[Mapping[str, object]] = (),
    tables: Sequence[tuple[str, Sequence[Mapping[str, object]]]] = (),
    thumbnails: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write ``path``: ``summary`` as a table, ``figures`` as ``(caption, relative PNG path)``,
    then each of ``tables`` (``(heading, rows)``), ``thumbnails`` (``(caption, PNG)``, a grid)
    and the picked structures. Wide tables scroll inside the page."""
    parts = [
        "<!DOCTYPE html>",
        f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        "<table>",
        *(
            f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
            for k, v in summary.items()
        ),
        "</table>",
    ]
    for caption, src in figures:
        parts.append(
            f"<figure><img src='{html.escape(src)}' alt='{html.escape(caption)}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    if thumbnails:
        parts.append("<h2>Picked structures (first few)</h2><div class='thumbs'>")
        parts.extend(
            f"<figure><img src='{html.escape(src)}' alt='{html.escape(caption)}'>"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
            for caption, src in thumbnails
        )
        parts.append("</div>")
    for heading, rows in [*tables, ("Picked structures", picked_rows)]:
        if not rows:
            continue
        columns = list(dict.fromkeys(c for row in rows for c in row))
        parts.append(f"<h2>{html.escape(heading)}</h2><table><tr>")
        parts.extend(f"<th>{html.escape(c)}</th>" for c in columns)
        parts.append("</tr>")
        for row in rows:
            cells = "".join(f"<td>{html.escape(str(row.get(c, '')))}</td>" for c in columns)
            parts.append(f"<tr>{cells}</tr>")
        parts.append("</table>")
    parts.append("</body></html>")
    path = Path(path)
    atomic_write_text(path, "\n".join(parts))
    return path
