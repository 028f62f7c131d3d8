"""The paper's claims (lrcn_tf.evaluation.claims) on the produced rows, per dataset and preset.

Rows with a `seed` column holding several seeds are evaluated once per seed: the verdict is
HOLDS in every seed, FAILS in every seed, or "k of n seeds", with the claim's margin (its
tightest comparison, left side minus right side: positive where it holds) as a mean over the
seeds and a 95% t-interval.
"""

from __future__ import annotations

import html
import math
import re

from lrcn_tf.evaluation import claims

# Every claim's reason lists its comparisons as "... <left> vs [name] <right>", left > right
# (or >=) being what the paper claims; tests/test_report.py checks every claim's format.
_COMPARISON = re.compile(r"(-?\d+\.\d+) vs (?:[\w/]+ )?(-?\d+\.\d+)")
# Two-sided 95% Student t quantiles for 1..10 degrees of freedom; 1.96 beyond.
_T95 = (12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23)


def margin(why: str) -> float | None:
    """The tightest comparison in a claim's reason: min(left - right), or None if it has none."""
    pairs = _COMPARISON.findall(why)
    return min(float(a) - float(b) for a, b in pairs) if pairs else None


def interval(xs: list[float]) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its 95% t-interval (needs two or more values)."""
    n = len(xs)
    mean = sum(xs) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = (_T95[n - 2] if n - 2 < len(_T95) else 1.96) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def _by_group(produced: list[dict]) -> dict[tuple[str, str], dict[str, list[dict]]]:
    """{(dataset, preset): {seed: rows}} (seed "" when the rows carry none)."""
    out: dict[tuple[str, str], dict[str, list[dict]]] = {}
    for r in produced:
        key = (r["dataset"], r.get("preset", "") or "?")
        out.setdefault(key, {}).setdefault(str(r.get("seed", "") or ""), []).append(r)
    return out


def verdicts(produced: list[dict]) -> list[dict]:
    """One dict per (dataset, preset, claim): verdict, seeds held, and the reason(s)."""
    out = []
    for (ds, preset), by_seed in sorted(_by_group(produced).items()):
        per_seed = {}
        for seed, rows in sorted(by_seed.items()):
            values = claims.values_by_dataset(rows).get(ds, {})
            for claim_id, statement, verdict, why in claims.evaluate(
                values, {k[0] for k in values}
            ):
                per_seed.setdefault((claim_id, statement), []).append((seed, verdict, why))
        for (claim_id, statement), results in per_seed.items():
            decided = [v for _, v, _ in results if v != claims.NA]
            held = sum(v == claims.HOLDS for v in decided)
            if not decided:
                verdict = claims.NA
            elif held == len(decided):
                verdict = claims.HOLDS
            elif held == 0:
                verdict = claims.FAILS
            else:
                verdict = f"{held} of {len(decided)} seeds"
            why = "; ".join(f"seed {s}: {w}" if s else w for s, v, w in results if v != claims.NA)
            margins = [m for _, v, w in results if v != claims.NA and (m := margin(w)) is not None]
            spread = interval(margins) if len(margins) >= 2 else None
            out.append(
                dict(
                    dataset=ds,
                    preset=preset,
                    claim=claim_id,
                    statement=statement,
                    verdict=verdict,
                    why=why or "rows needed are absent",
                    seeds=len(results),
                    interval=spread,
                )
            )
    return out


def _verdict_text(v: dict) -> str:
    if v["interval"] is None:
        return v["verdict"]
    mean, lo, hi = v["interval"]
    return f"{v['verdict']}; margin {mean:+.2f} [{lo:+.2f}, {hi:+.2f}] over {v['seeds']} seeds"


def _css(verdict: str) -> str:
    return {claims.HOLDS: "HOLDS", claims.FAILS: "FAILS", claims.NA: "NA"}.get(verdict, "MIXED")


def claims_html(produced: list[dict]) -> str:
    rows = verdicts(produced)
    if not rows:
        return "<p>No produced rows.</p>"
    trs = "".join(
        f"<tr><td>{html.escape(v['dataset'])}</td><td>{html.escape(v['preset'])}</td>"
        f"<td><code>{html.escape(v['claim'])}</code><br>{html.escape(v['statement'])}</td>"
        f'<td class="{_css(v["verdict"])}">{html.escape(_verdict_text(v))}</td>'
        f"<td>{html.escape(v['why'])}</td></tr>"
        for v in rows
    )
    return (
        "<p>Each claim of the paper checked on our rows of one dataset and preset (N/A: the "
        "rows it needs were not run). On synthetic data a verdict says whether the pipeline "
        "shows the paper's effect there, not whether the paper holds. Where several seeds ran: "
        "the claim's margin (its tightest comparison, left minus right) as a mean over the seeds "
        "and a 95% t-interval.</p>"
        "<table><thead><tr><th>dataset</th><th>preset</th><th>claim</th><th>verdict</th>"
        f"<th>comparisons</th></tr></thead><tbody>{trs}</tbody></table>"
    )


def claims_md(produced: list[dict]) -> list[str]:
    lines = ["| dataset | preset | claim | verdict | comparisons |", "|---|---|---|---|---|"]
    for v in verdicts(produced):
        lines.append(
            f"| {v['dataset']} | {v['preset']} | `{v['claim']}`: {v['statement']} | "
            f"**{_verdict_text(v)}** | {v['why']} |"
        )
    return lines


# The columns of the claims over seeds (results/claims_seeds.csv), as `reproduce.claims`
# writes them.
SEED_COLUMNS = (
    "dataset",
    "preset",
    "claim",
    "statement",
    "verdict",
    "seeds",
    "seeds_held",
    "margin_mean",
    "margin_low",
    "margin_high",
    "comparisons",
)


def read_over_seeds(path) -> list[dict] | None:
    """The claims over seeds that `python -m reproduce.claims` wrote (results/claims_seeds.csv),
    or None when there is no such file or it lacks the columns this view shows."""
    import csv
    from pathlib import Path

    try:
        rows = list(csv.DictReader(Path(path).read_text().splitlines()))
    except OSError:
        return None
    needed = set(SEED_COLUMNS) - {"statement", "comparisons"}  # what this view shows
    if not rows or not needed <= set(rows[0]):
        return None
    return rows


def _span(r: dict) -> str:
    try:
        mean, lo, hi = (float(r[k]) for k in ("margin_mean", "margin_low", "margin_high"))
    except ValueError:
        return "?"
    return f"{mean:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def over_seeds_html(rows: list[dict], source: str) -> str:
    trs = "".join(
        f"<tr><td>{html.escape(r['dataset'])}</td><td>{html.escape(r['preset'])}</td>"
        f"<td><code>{html.escape(r['claim'])}</code><br>{html.escape(r.get('statement', ''))}</td>"
        f'<td class="{_css(r["verdict"])}">{html.escape(r["verdict"])}</td>'
        f"<td>{html.escape(r['seeds_held'])} of {html.escape(r['seeds'])}</td>"
        f"<td>{html.escape(_span(r))}</td></tr>"
        for r in rows
    )
    return (
        f"<h3>Over seeds ({html.escape(source)}, written by python -m reproduce.claims)</h3>"
        "<p>Each claim's margin (its tightest comparison, left minus right: positive where it "
        "holds) as a mean over the seeds with a 95% t-interval.</p>"
        "<table><thead><tr><th>dataset</th><th>preset</th><th>claim</th><th>verdict</th>"
        f"<th>seeds held</th><th>margin [95% interval]</th></tr></thead><tbody>{trs}</tbody>"
        "</table>"
    )


def over_seeds_md(rows: list[dict], source: str) -> list[str]:
    lines = [
        f"### Over seeds ({source}, written by `python -m reproduce.claims`)",
        "",
        "| dataset | preset | claim | verdict | seeds held | margin [95% interval] |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['preset']} | `{r['claim']}` | **{r['verdict']}** | "
            f"{r['seeds_held']} of {r['seeds']} | {_span(r)} |"
        )
    return lines + [""]
