"""A self-contained HTML page of test images with generated and reference captions."""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path

from lrcn_tf.runtime import write_text_atomic

_STYLE = """
body { font-family: sans-serif; margin: 1.5em; }
.note { background: #fff3cd; padding: .6em; border: 1px solid #e0c36c; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(330px, 1fr)); gap: 1em; }
.card { border: 1px solid #ccc; padding: .6em; border-radius: 6px; }
.card img { width: 192px; height: 192px; image-rendering: pixelated; display: block; }
.gen { margin: .3em 0; } .gen b { display: inline-block; min-width: 5.5em; }
ul { margin: .3em 0; padding-left: 1.2em; color: #555; font-size: 90%; }
"""


def write_samples_html(
    path: str | Path,
    title: str,
    image_ids: Sequence,
    jpegs: Mapping,
    generated: Mapping[str, Mapping],
    references: Mapping,
    note: str = "",
) -> Path:
    """Writes an HTML page with each image (embedded as base64 JPEG) and its captions.

    Args:
      path: the .html file to write (atomically).
      title: page title.
      image_ids: which images, in order.
      jpegs: image id -> JPEG bytes.
      generated: method name (e.g. "LRCN", "1-NN fc7") -> {image id: caption}.
      references: image id -> reference captions.
      note: a line shown above the grid (e.g. that the data is synthetic).
    """
    cards = []
    for i in image_ids:
        src = "data:image/jpeg;base64," + base64.b64encode(jpegs[i]).decode("ascii")
        gens = "".join(
            f'<div class="gen"><b>{html.escape(name)}</b> {html.escape(caps.get(i, ""))}</div>'
            for name, caps in generated.items()
        )
        refs = "".join(f"<li>{html.escape(r)}</li>" for r in references.get(i, []))
        cards.append(
            f'<div class="card"><img src="{src}" alt="image {html.escape(str(i))}">'
            f"<div>image {html.escape(str(i))}</div>{gens}<div>references:</div><ul>{refs}</ul></div>"
        )
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
        + (f'<p class="note">{html.escape(note)}</p>' if note else "")
        + f'<div class="grid">{"".join(cards)}</div></body></html>\n'
    )
    write_text_atomic(path, page)
    return Path(path)
