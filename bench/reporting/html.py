"""``report.html``: the markdown report as one self-contained page (pure).

Rendered with markdown-it (CommonMark plus tables); every image the report names is embedded as
a data URI (the SVG version of a plot where one exists), the style sheet is inline, and nothing
refers to the network, so the file reads the same offline, mailed or archived. Every table sits
in a box of its own that scrolls sideways when the table is wider than the page; the headline
sentence is set apart.
"""

from __future__ import annotations

import base64
import html
import re

from bench.analysis.headline import LEAD

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1b1f24; margin: 2rem auto; max-width: 78rem; padding: 0 1.5rem; }
h1 { font-size: 1.7rem; border-bottom: 2px solid #d0d7de; padding-bottom: .3rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #d0d7de; padding-bottom: .2rem; }
h3 { font-size: 1.1rem; margin-top: 1.6rem; }
/* A table wider than the page scrolls inside its own box; shadows at the box's edges show that
   there is more to the side (the white covers scroll with the content, the shadows stay). */
.scroll { overflow-x: auto; max-width: 100%; margin: .8rem 0 1.2rem;
  background: linear-gradient(to right, #fff 30%, rgba(255,255,255,0)) left / 2.5rem 100% no-repeat local,
    linear-gradient(to left, #fff 30%, rgba(255,255,255,0)) right / 2.5rem 100% no-repeat local,
    radial-gradient(farthest-side at 0 50%, rgba(0,0,0,.22), rgba(0,0,0,0)) left / .9rem 100% no-repeat scroll,
    radial-gradient(farthest-side at 100% 50%, rgba(0,0,0,.22), rgba(0,0,0,0)) right / .9rem 100% no-repeat scroll; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: .25rem .55rem; vertical-align: top; }
th { font-weight: 600; border-bottom: 2px solid #afb8c1; }
td { white-space: nowrap; }
td:not([style]) { white-space: normal; min-width: 7rem; max-width: 24rem; }  /* text wraps, numbers do not */
code { background: #f3f5f7; padding: 0 .25rem; border-radius: 3px; font-size: 90%; }
img { max-width: 100%; height: auto; border: 1px solid #e5e8eb; margin: .5rem 0; }
img[src^="data:image/svg"] { width: 100%; }  /* plots drawn at page width: text near its nominal size */
p.headline { font-size: 1.2rem; line-height: 1.5; background: #f3f7fb; border-left: 4px solid #8c959f;
             padding: .7rem 1rem; }
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
    body = body.replace("<table>", '<div class="scroll"><table>').replace("</table>", "</table></div>")
    body = body.replace(f"<p><strong>{LEAD}", f'<p class="headline"><strong>{LEAD}')
    top = f'<div class="partial" role="alert">{html.escape(banner)}</div>\n' if banner else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{top}{body}</body>\n</html>\n"
    )
