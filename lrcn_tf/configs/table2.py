"""Table 2 config: caption/image retrieval with the LRCN_2f captioner (paper Section 5).

    python -m reproduce.table2                         # default: synthetic_flickr30k, 2 CPU cores
    python -m reproduce.table2 --preset smoke          # the CI regression
    python -m reproduce.table2 --dataset coco2014 --data_dir DIR --preset paper \
        --set captioner.encoder.weights=caffenet.npz

One row, `table2/lrcn_2f`: the model is Table 3's `table3/lrcn_2f` captioner for the same
preset (nested as `captioner`, so its recipe is defined once, in lrcn_tf/configs/table3.py, and
overridable here as `--set captioner.stage1.max_iter=...`). Its training run folder is the
same as Table 3's, so whichever table runs first trains it and the other reuses it. What this
config adds is how the trained model is scored (reference/original_recipes.md, Retrieval):
every caption of `split` against every image of it, log P(caption | image) with clamped word
probabilities, in blocks of `caption_chunk` x `image_chunk` pairs.

Presets: `paper` scores the Karpathy test split (Flickr30k: 1,000 images x 5,000 captions,
COCO: 5,000 x 25,000); `default` and `smoke` score the synthetic test split (100 images x 500
captions) with Table 3's embedded-data captioners.
"""

from __future__ import annotations

import dataclasses

from lrcn_tf.configs.registry import ConfigError, build, register
from lrcn_tf.configs.table3 import Table3Config

SCORING_METHODS = ("factored", "naive")  # lrcn_tf.evaluation.retrieval_scoring.METHODS


@dataclasses.dataclass(frozen=True)
class Table2Config:
    """The LRCN_2f captioner (Table 3's config) and how its retrieval scores are computed."""

    row: str = "lrcn_2f"
    captioner: Table3Config = Table3Config()
    split: str = "test"
    # factored: the word-only part once per caption (the fast path); naive: the whole decoder
    # on every pair (same numbers within 1e-4, for checking and benchmarks).
    method: str = "factored"
    # Pairs scored at once = caption_chunk x image_chunk; memory grows with it times the
    # vocabulary, not with the test size.
    caption_chunk: int = 128
    image_chunk: int = 32

    def validate(self) -> None:
        if self.row != "lrcn_2f":
            raise ConfigError(f"row {self.row!r}: Table 2's only reproduced row is lrcn_2f")
        if self.captioner.variant != "2f":
            raise ConfigError(
                f"captioner.variant {self.captioner.variant!r}: retrieval uses LRCN_2f (the "
                "paper's retrieval model)"
            )
        if self.split not in ("val", "test"):
            raise ConfigError(f"split {self.split!r}: use 'val' or 'test'")
        if self.method not in SCORING_METHODS:
            raise ConfigError(f"method {self.method!r}: choose one of {SCORING_METHODS}")
        if self.caption_chunk < 1 or self.image_chunk < 1:
            raise ConfigError("caption_chunk and image_chunk must be >= 1")


@register("table2/lrcn_2f")
def lrcn_2f(preset: str) -> Table2Config:
    """LRCN_2f retrieval: Table 3's LRCN_2f for `preset`, scored on the test split."""
    return Table2Config(captioner=build("table3/lrcn_2f", preset))
