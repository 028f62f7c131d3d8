r"""Turns a raw dataset into the project's training format.

    python -m lrcn_tf.prepare --dataset ucf101 --src UCF-101 --splits ucfTrainTestlist --out DIR
    python -m lrcn_tf.prepare --dataset synthetic_ucf101 --out DIR
    python -m lrcn_tf.prepare --dataset NAME --helpfull      # that dataset's own flags

Each dataset module defines its own flags in `define_prepare_flags()` and does the work in
`prepare_main(argv)`; this program only picks the module from `--dataset`.
"""

from __future__ import annotations

import importlib
import sys

from absl import app, flags

PREPARERS = {
    "ucf101": "lrcn_tf.data.ucf101.prepare",
    "synthetic_ucf101": "lrcn_tf.data.ucf101.prepare",
    "coco2014": "lrcn_tf.data.captions.prepare",
    "flickr30k": "lrcn_tf.data.captions.prepare",
    "synthetic_coco2014": "lrcn_tf.data.captions.prepare",
    "synthetic_flickr30k": "lrcn_tf.data.captions.prepare",
    "tacos_multilevel": "lrcn_tf.data.tacos.format",
    "synthetic_tacos": "lrcn_tf.data.tacos.format",
}


def _dataset_from_argv(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        if arg.startswith("--dataset="):
            return arg.split("=", 1)[1]
        if arg == "--dataset" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def main() -> None:
    dataset = _dataset_from_argv(sys.argv[1:])
    flags.DEFINE_enum("dataset", None, sorted(PREPARERS), "Which dataset to prepare.")
    flags.DEFINE_string("out", None, "Output folder.")
    flags.mark_flags_as_required(["dataset", "out"])
    if dataset in PREPARERS:
        module = importlib.import_module(PREPARERS[dataset])
        module.define_prepare_flags()
        app.run(module.prepare_main)
    else:
        app.run(lambda argv: None)  # absl reports the missing or unknown --dataset


if __name__ == "__main__":
    main()
