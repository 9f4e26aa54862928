"""``report.html``: the markdown report as one self-contained page (pure).

Rendered with markdown-it (CommonMark plus tables); every image the report names is embedded as
a data URI (the SVG version of a plot where one exists), the style sheet is inline, and nothing
refers to the network, so the file reads the same offline, mailed or archived.
"""

from __future__ import annotations

import base64
import html
import re

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1b1f24; margin: 2rem auto; max-width: 78rem; padding: 0 1.5rem; }
h1 { font-size: 1.7rem; border-bottom: 2px solid #d0d7de; padding-bottom: .3rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; }
h3 { font-size: 1.1rem; margin-top: 1.6rem; }
table { border-collapse: collapse; margin: .8rem 0 1.2rem; font-size: 13px; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d7de; padding: .25rem .55rem; white-space: nowrap; }
th { background: #f3f5f7; }
tr:nth-child(even) td { background: #fafbfc; }
code { background: #f3f5f7; padding: 0 .25rem; border-radius: 3px; font-size: 90%; }
img { max-width: 100%; height: auto; border: 1px solid #e5e8eb; margin: .5rem 0; }
blockquote { margin: 1rem 0; padding: .4rem 1rem; border-left: 4px solid #d0d7de; color: #3d444d; }
.partial { background: #b3261e; color: #fff; font-weight: 700; font-size: 1.25rem; padding: .8rem 1.2rem;
           border-radius: 6px; margin-bottom: 1.5rem; }
"""

MIME = {"svg": "image/svg+xml", "png": "image/png"}


def _data_uri(name: str, images: dict[str, bytes]) -> str | None:
    """The embedded form of an image the markdown names: its SVG sibling if given, else itself."""
    stem, _, ext = name.rpartition(".")
    for candidate in (f"{stem}.svg", name):
        if candidate in images:
            kind = MIME[candidate.rpartition(".")[2]]
            return f"data:{kind};base64," + base64.b64encode(images[candidate]).decode("ascii")
    return None


def render(markdown_text: str, images: dict[str, bytes], title: str, banner: str | None = None) -> str:
    """One HTML document from the report's markdown; ``images`` maps file names to their bytes;
    ``banner``, when given, is shown above everything (e.g. that the run is partial)."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown_text)

    def embed(match: re.Match) -> str:
        uri = _data_uri(html.unescape(match.group(1)), images)
        return f'src="{uri}"' if uri else match.group(0)

    body = re.sub(r'src="([^"]+)"', embed, body)
    top = f'<div class="partial" role="alert">{html.escape(banner)}</div>\n' if banner else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{top}{body}</body>\n</html>\n")
