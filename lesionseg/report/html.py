"""A small HTML writer for the report pages: escaped text, tables, figures and one self-contained page.

Every piece of text that comes from data (case ids, paths, configuration values) goes through
:func:`html.escape`; the page has its style inline and links its figures by relative file names, so it
works offline and can be moved together with its PNG files.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

_STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1300px;
       color: #222; padding: 0 1em; }
h1 { font-size: 1.6em; border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #bbb; }
table { border-collapse: collapse; margin: .6em 0; font-size: .88em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f0f0f0; }
td.text, th.text { text-align: left; }
tr.summary td { font-weight: bold; background: #fafafa; }
figure { display: inline-block; margin: .5em 1em .5em 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: .85em; color: #555; max-width: 900px; }
p.note { color: #7a4b00; background: #fff7e0; border-left: 4px solid #e0a800; padding: .4em .8em; }
nav a { margin-right: 1em; }
.scroll { max-height: 420px; overflow-y: auto; display: inline-block; }
"""


def escape(value: Any) -> str:
    """HTML-escaped text of any value (quotes included)."""
    return html.escape(str(value), quote=True)


def format_value(value: Any, digits: int = 3) -> str:
    """A table cell's text: floats with ``digits`` decimals (large ones with fewer), None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 10 ** -digits):
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, text_columns: Sequence[int] = (0,),
          summary_rows: Iterable[Sequence[Any]] = (), digits: int = 3, scroll: bool = False) -> str:
    """An HTML table; cells are formatted with :func:`format_value` and escaped.

    Args:
        headers: the column titles.
        rows: the body rows.
        text_columns: columns aligned left (text); the others are right-aligned numbers.
        summary_rows: rows shown in bold after the body (e.g. mean ± sd).
        digits: decimals of floats.
        scroll: put the table in a scrolling box (long per-case tables).
    """
    text_class = ' class="text"'

    def cells(row: Sequence[Any], tag: str) -> str:
        return "".join(f"<{tag}{text_class if i in text_columns else ''}>{escape(format_value(v, digits))}</{tag}>"
                       for i, v in enumerate(row))

    parts = ["<table>", f"<thead><tr>{cells(headers, 'th')}</tr></thead>", "<tbody>"]
    parts += [f"<tr>{cells(row, 'td')}</tr>" for row in rows]
    parts += [f'<tr class="summary">{cells(row, "td")}</tr>' for row in summary_rows]
    parts.append("</tbody></table>")
    body = "\n".join(parts)
    return f'<div class="scroll">{body}</div>' if scroll else body


def figure(src: str, caption: str, alt: str | None = None, width: int | None = None) -> str:
    """An image with its caption; ``src`` is a file name relative to the page."""
    size = f' width="{int(width)}"' if width else ""
    return (f'<figure><img src="{escape(src)}" alt="{escape(alt or caption)}"{size}>'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def paragraph(text: str) -> str:
    """A paragraph of escaped text."""
    return f"<p>{escape(text)}</p>"


def note(text: str) -> str:
    """A highlighted note (something left out and why)."""
    return f'<p class="note">{escape(text)}</p>'


def section(anchor: str, title: str, *parts: str) -> str:
    """A section with an anchor for the navigation bar; ``parts`` are already HTML."""
    return f'<section id="{escape(anchor)}"><h2>{escape(title)}</h2>\n' + "\n".join(parts) + "\n</section>"


def page(title: str, sections: Sequence[tuple[str, str, str]], subtitle: str = "") -> str:
    """The whole document.

    Args:
        title: the page title.
        sections: ``(anchor, title, html)`` per section, in order; a navigation bar links to each.
        subtitle: a line under the title (escaped).
    """
    navigation = " ".join(f'<a href="#{escape(anchor)}">{escape(name)}</a>' for anchor, name, _ in sections)
    body = "\n".join(section(anchor, name, content) for anchor, name, content in sections)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{escape(title)}</title>\n'
            f"<style>{_STYLE}</style>\n</head>\n<body>\n<h1>{escape(title)}</h1>\n"
            + (f"<p>{escape(subtitle)}</p>\n" if subtitle else "")
            + f"<nav>{navigation}</nav>\n{body}\n</body>\n</html>\n")
