"""The paper's claims (SPEC.md), evaluated on any set of result rows of one dataset.

Each claim returns HOLDS, FAILS or N/A (the rows it needs are absent) and a short reason.
Claims are checked on every setting that has all the rows they need (split1, all_splits,
...), and hold only if they hold on each of those settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

HOLDS, FAILS, NA = "HOLDS", "FAILS", "N/A"

# (table, row, setting, metric) -> value, for one dataset.
Values = dict[tuple[str, str, str, str], float]

_T1_ROWS = ("single_frame", "lrcn_fc6", "lrcn_fc7")
_T1_SETTINGS = ("split1", "split2", "split3", "all_splits")
_BLEU = ("bleu1", "bleu2", "bleu3", "bleu4")


def _verdict(checks: list[tuple[bool, str]]) -> tuple[str, str]:
    if not checks:
        return NA, "rows needed are absent"
    failed = [why for ok, why in checks if not ok]
    if failed:
        return FAILS, "; ".join(failed)
    return HOLDS, f"{len(checks)} comparison(s) hold: " + "; ".join(why for _, why in checks)


def _get(v: Values, *key: str) -> float | None:
    return v.get(tuple(key))


def t1_lrcn_beats_single(v: Values):
    checks = []
    for s in _T1_SETTINGS:
        for m in ("rgb", "flow"):
            a, b = _get(v, "table1", "lrcn_fc6", s, m), _get(v, "table1", "single_frame", s, m)
            if a is not None and b is not None:
                checks.append((a > b, f"{s}/{m}: lrcn_fc6 {a:.2f} vs single_frame {b:.2f}"))
    return _verdict(checks)


def t1_fusion_helps(v: Values):
    checks = []
    for r in _T1_ROWS:
        for s in _T1_SETTINGS:
            vals = [_get(v, "table1", r, s, m) for m in ("rgb", "flow", "fusion_third")]
            if None not in vals:
                rgb, flow, third = vals
                checks.append(
                    (
                        third > max(rgb, flow),
                        f"{r}/{s}: fusion_third {third:.2f} vs max {max(rgb, flow):.2f}",
                    )
                )
    return _verdict(checks)


def t1_flow_weighted_higher(v: Values):
    checks = []
    for r in _T1_ROWS:
        for s in _T1_SETTINGS:
            third, half = (_get(v, "table1", r, s, m) for m in ("fusion_third", "fusion_half"))
            if third is not None and half is not None:
                checks.append((third >= half, f"{r}/{s}: third {third:.2f} vs half {half:.2f}"))
    return _verdict(checks)


def t1_fc6_beats_fc7(v: Values):
    checks = []
    for m in ("rgb", "flow"):
        a, b = (
            _get(v, "table1", "lrcn_fc6", "split1", m),
            _get(v, "table1", "lrcn_fc7", "split1", m),
        )
        if a is not None and b is not None:
            checks.append((a >= b, f"split1/{m}: fc6 {a:.2f} vs fc7 {b:.2f}"))
    return _verdict(checks)


def t2_image_to_caption_easier(v: Values):
    a = _get(v, "table2", "lrcn_2f", "image_to_caption", "r1")
    b = _get(v, "table2", "lrcn_2f", "caption_to_image", "r1")
    if a is None or b is None:
        return _verdict([])
    return _verdict([(a > b, f"lrcn_2f r1 image_to_caption {a:.2f} vs caption_to_image {b:.2f}")])


def _bleu_claim(v: Values, better: str, worse: str, strict: bool):
    checks = []
    for m in _BLEU:
        a, b = _get(v, "table3", better, "test", m), _get(v, "table3", worse, "test", m)
        if a is not None and b is not None:
            checks.append(
                (a > b if strict else a >= b, f"{m}: {better} {a:.2f} vs {worse} {b:.2f}")
            )
    return _verdict(checks)


def t3_lrcn_beats_nn(v: Values):
    return _bleu_claim(v, "lrcn", "nn_fc7", strict=True)


def t3_fc7_beats_fc8(v: Values):
    return _bleu_claim(v, "nn_fc7", "nn_fc8", strict=False)


def _t5(v: Values, better: str, worse: str):
    a, b = _get(v, "table5", better, "test", "bleu4"), _get(v, "table5", worse, "test", "bleu4")
    if a is None or b is None:
        return _verdict([])
    return _verdict([(a > b, f"bleu4 {better} {a:.2f} vs {worse} {b:.2f}")])


def t5_prob_beats_max(v: Values):
    return _t5(v, "lstm_dec_crf_prob", "lstm_dec_crf_max")


def t5_decoder_beats_encoder_decoder(v: Values):
    return _t5(v, "lstm_dec_crf_max", "lstm_enc_dec_crf_max")


CLAIMS: dict[str, tuple[str, Callable[[Values], tuple[str, str]]]] = {
    "t1_lrcn_beats_single": ("lrcn_fc6 > single_frame for rgb and for flow", t1_lrcn_beats_single),
    "t1_fusion_helps": ("for every row, fusion_third > max(rgb, flow)", t1_fusion_helps),
    "t1_flow_weighted_higher": (
        "for every row, fusion_third >= fusion_half",
        t1_flow_weighted_higher,
    ),
    "t1_fc6_beats_fc7": ("lrcn_fc6 >= lrcn_fc7 on split1, rgb and flow", t1_fc6_beats_fc7),
    "t2_image_to_caption_easier": (
        "r1 image_to_caption > r1 caption_to_image",
        t2_image_to_caption_easier,
    ),
    "t3_lrcn_beats_nn": ("lrcn > nn_fc7 on bleu1..bleu4", t3_lrcn_beats_nn),
    "t3_fc7_beats_fc8": ("nn_fc7 >= nn_fc8 on bleu1..bleu4", t3_fc7_beats_fc8),
    "t5_prob_beats_max": ("lstm_dec_crf_prob > lstm_dec_crf_max", t5_prob_beats_max),
    "t5_decoder_beats_encoder_decoder": (
        "lstm_dec_crf_max > lstm_enc_dec_crf_max",
        t5_decoder_beats_encoder_decoder,
    ),
}


def values_by_dataset(rows: Iterable[dict]) -> dict[str, Values]:
    """Groups result rows into {dataset: {(table, row, setting, metric): value}}."""
    out: dict[str, Values] = {}
    for r in rows:
        out.setdefault(r["dataset"], {})[(r["table"], r["row"], r["setting"], r["metric"])] = float(
            r["value"]
        )
    return out


def evaluate(
    values: Values, tables: Iterable[str] | None = None
) -> list[tuple[str, str, str, str]]:
    """Every claim (or those of `tables`) on one dataset: (id, statement, verdict, reason)."""
    wanted = set(tables) if tables is not None else None
    out = []
    for claim_id, (statement, fn) in CLAIMS.items():
        if wanted is not None and f"table{claim_id[1]}" not in wanted:
            continue
        verdict, why = fn(values)
        out.append((claim_id, statement, verdict, why))
    return out
