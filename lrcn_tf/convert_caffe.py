"""Converts a Caffe deploy net and its caffemodel into a Keras 3 `.keras` model.

    python -m lrcn_tf.convert_caffe --prototxt deploy_lstm.prototxt \\
        --caffemodel RGB_lstm_model_iter_30000.caffemodel --out lrcn_rgb.keras

    import lrcn_tf, keras
    model = keras.models.load_model("lrcn_rgb.keras")      # after `import lrcn_tf`

Input contract: exactly what Caffe's input blobs hold, channels-last. Frames are BGR,
mean-subtracted float32. Single-frame nets: (N, H, W, 3) -> (N, classes). LRCN (clip) nets:
(N, T, H, W, 3) and clip markers (N, T) -> (N, T, classes); `--noclip_markers` makes a model
of frames alone whose clips start at t = 0. Captioning nets: one input per Caffe input,
sequences batch-major (N, T). Reading needs protobuf only, no Caffe. docs/parity.md says what
is proven equal to Caffe. Errors are one line naming the file or layer; an existing --out is
never overwritten without --overwrite.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from absl import app, flags

from lrcn_tf import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("prototxt", None, "The deploy .prototxt (inputs declared).")
flags.DEFINE_string("caffemodel", None, "Its weights (.caffemodel, V1 or V2 format).")
flags.DEFINE_string("out", None, "The .keras file to write.")
flags.DEFINE_bool("clip_markers", True, "Clip nets: take clip markers (N, T) as a second input.")
flags.DEFINE_string("phase", "TEST", "The phase whose layers are kept (TRAIN or TEST).")
flags.DEFINE_multi_string("stage", [], "Stages whose layers are kept (repeat the flag).")
flags.DEFINE_bool("overwrite", False, "Replace an existing --out file.")


def run(
    prototxt: str,
    caffemodel: str,
    out: str,
    *,
    clip_markers: bool = True,
    phase: str = "TEST",
    stages=(),
    overwrite: bool = False,
) -> Path:
    """Converts and saves; returns the written path. Raises CaffeError / ValueError."""
    from lrcn_tf.caffe import CaffeError, convert

    out_path = Path(out)
    if out_path.suffix != ".keras":
        raise CaffeError(f"--out {out}: the file name must end in .keras")
    if out_path.exists() and not overwrite:
        raise CaffeError(f"--out {out}: already exists (pass --overwrite to replace it)")
    if phase.upper() not in ("TRAIN", "TEST"):
        raise CaffeError(f"--phase {phase}: use TRAIN or TEST")
    model = convert(prototxt, caffemodel, clip_markers=clip_markers, phase=phase, stages=stages)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".keras", dir=out_path.parent)
    os.close(fd)
    try:
        model.save(tmp)
        os.replace(tmp, out_path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out_path


def main(argv) -> int:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    for name in ("prototxt", "caffemodel", "out"):
        if not getattr(FLAGS, name):
            raise app.UsageError(f"--{name} is required")
    path = run(
        FLAGS.prototxt,
        FLAGS.caffemodel,
        FLAGS.out,
        clip_markers=FLAGS.clip_markers,
        phase=FLAGS.phase,
        stages=FLAGS.stage,
        overwrite=FLAGS.overwrite,
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    cli.run(main)
