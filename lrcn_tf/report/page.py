"""The page's look (one stylesheet, inlined) and its fixed wording."""

from __future__ import annotations

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1150px;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { margin-bottom: .2em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: .2em;
     margin-top: 2.2em; } h3 { margin-bottom: .3em; }
nav ul { columns: 2; font-size: 90%; }
.banner { background: #fff3cd; border: 1px solid #e0c36c; padding: .6em .8em;
          border-radius: 4px; }
.caption { font-style: italic; color: #444; }
.sub { color: #555; margin: .8em 0 .2em; }
.missing { color: #8a6d3b; font-size: 90%; }
table { border-collapse: collapse; margin: .4em 0 1em; font-size: 90%; }
th, td { border: 1px solid #ccc; padding: .25em .5em; vertical-align: top; }
table.results td { text-align: right; white-space: nowrap; }
table.results th { text-align: left; }
tr.group th { background: #f0f0f0; font-weight: 600; }
tr.paperrow th, td.paperonly { color: #888; }
.ours { font-weight: 700; }
.paper { color: #666; margin-left: .45em; font-size: 85%; }
.paper::before { content: "paper "; font-size: 80%; }
.diff { margin-left: .45em; padding: 0 .3em; border-radius: 3px; font-size: 85%; }
td.paperonly .paper::before { content: ""; }
figure { margin: 1em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 85%; color: #555; }
details { margin: .6em 0; } summary { cursor: pointer; color: #335; }
table.prov { font-size: 80%; } table.prov td { word-break: break-all; }
.HOLDS { background: #d4edda; font-weight: 700; } .FAILS { background: #f8d7da;
  font-weight: 700; } .NA { background: #eee; } .MIXED { background: #fff3cd; font-weight: 700; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr)); gap: .8em; }
.card { border: 1px solid #ccc; padding: .6em; border-radius: 6px; font-size: 90%; }
.card img { width: 160px; height: 160px; image-rendering: pixelated; display: block; }
.gen { margin: .3em 0; } .gen b { display: inline-block; min-width: 5.5em; }
.card ul { margin: .3em 0; padding-left: 1.2em; color: #555; }
"""


def banner_text(group) -> str:
    """The warning on a table computed on a generated dataset."""
    return (
        f"{group.dataset} is a small generated stand-in for {group.paper_dataset}: these "
        "numbers test the pipeline and are NOT comparable to the paper's, shown beside them "
        "for context only."
    )
