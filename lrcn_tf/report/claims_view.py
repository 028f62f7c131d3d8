"""The paper's claims (lrcn_tf.evaluation.claims) on the produced rows, per dataset and preset.

Rows with a `seed` column holding several seeds are evaluated once per seed: the verdict is
HOLDS in every seed, FAILS in every seed, or "k of n seeds".
"""

from __future__ import annotations

import html

from lrcn_tf.evaluation import claims


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
            out.append(
                dict(
                    dataset=ds,
                    preset=preset,
                    claim=claim_id,
                    statement=statement,
                    verdict=verdict,
                    why=why or "rows needed are absent",
                    seeds=len(results),
                )
            )
    return out


def claims_html(produced: list[dict]) -> str:
    rows = verdicts(produced)
    if not rows:
        return "<p>No produced rows.</p>"
    trs = "".join(
        f"<tr><td>{html.escape(v['dataset'])}</td><td>{html.escape(v['preset'])}</td>"
        f"<td><code>{html.escape(v['claim'])}</code><br>{html.escape(v['statement'])}</td>"
        f'<td class="{"NA" if v["verdict"] == claims.NA else v["verdict"].split()[0]}">'
        f"{html.escape(v['verdict'])}</td><td>{html.escape(v['why'])}</td></tr>"
        for v in rows
    )
    return (
        "<p>Each claim of the paper checked on our rows of one dataset and preset (N/A: the "
        "rows it needs were not run). On synthetic data a verdict says whether the pipeline "
        "shows the paper's effect there, not whether the paper holds.</p>"
        "<table><thead><tr><th>dataset</th><th>preset</th><th>claim</th><th>verdict</th>"
        f"<th>comparisons</th></tr></thead><tbody>{trs}</tbody></table>"
    )


def claims_md(produced: list[dict]) -> list[str]:
    lines = ["| dataset | preset | claim | verdict | comparisons |", "|---|---|---|---|---|"]
    for v in verdicts(produced):
        lines.append(
            f"| {v['dataset']} | {v['preset']} | `{v['claim']}`: {v['statement']} | "
            f"**{v['verdict']}** | {v['why']} |"
        )
    return lines
