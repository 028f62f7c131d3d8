"""What the report reads from run folders: provenance, training curves and saved outputs.

Every run folder (`lrcn_tf.runtime.Run`) holds `config.json`, `versions.json`, `commit.txt`
and `log.txt`; trained rows also hold TensorBoard event files (`ckpt*/tensorboard/`, written
by `lrcn_tf.training.trainer.fit`: `loss` and `learning_rate` every `log_every` steps). A
missing or partial folder is reported as such, never an error: the report is built from the
result CSVs, and run folders only add to it.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class RunFolder:
    """One run folder as the report sees it; `exists` is False when it is not on this machine."""

    run_id: str
    path: Path
    exists: bool
    config: dict[str, Any]
    versions: dict[str, str]
    commit: str

    def file(self, *parts: str) -> Path:
        return self.path.joinpath(*parts)


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load_run(workdir: str | Path, run_id: str) -> RunFolder:
    """The run folder `workdir/run_id`, read as far as it goes."""
    path = Path(workdir) / run_id
    if not (path / "config.json").is_file():
        return RunFolder(run_id, path, False, {}, {}, "")
    try:
        commit = (path / "commit.txt").read_text().strip()
    except OSError:
        commit = ""
    return RunFolder(
        run_id, path, True, _json(path / "config.json"), _json(path / "versions.json"), commit
    )


def split_run_ids(run_id: str) -> list[str]:
    """A CSV `run_id` names one run, or several joined by `+` (Table 1's mean of three splits)."""
    return [r for r in str(run_id).split("+") if r]


def weights_source(run: RunFolder) -> str:
    """Where a row's starting weights came from, in words (from its config)."""
    if not run.exists:
        return "unknown (run folder not here)"
    c = run.config
    cfg = c.get("config", {}) if isinstance(c.get("config"), dict) else {}
    if "fusion_of" in c:
        return "none: fuses the saved scores of " + " and ".join(c["fusion_of"])
    if "captioner_run" in c:
        return f"the captioner trained in {c['captioner_run']}"
    parts = []
    enc = cfg.get("encoder") if isinstance(cfg.get("encoder"), dict) else None
    weights = cfg.get("backbone_weights") or (enc or {}).get("weights")
    if weights:
        parts.append(f"CNN from {Path(str(weights)).name} (converted weights file)")
    elif enc is not None and enc.get("pretext"):
        parts.append("CNN pre-trained here on the generated pretext task (ImageNet stand-in)")
    if c.get("init_from"):
        parts.append(f"CNN copied from {c['init_from']}")
    if not parts:
        parts.append("random initialisation")
    return "trained here; " + ", ".join(parts)


# --- TensorBoard scalars ---------------------------------------------------------------------


def _records(data: bytes):
    """The records of a TFRecord file (length, crc, payload, crc); stops at a torn tail."""
    i = 0
    while i + 12 <= len(data):
        (n,) = struct.unpack_from("<Q", data, i)
        if i + 12 + n + 4 > len(data):
            return
        yield data[i + 12 : i + 12 + n]
        i += 12 + n + 4


def _scalar(value) -> float | None:
    if value.HasField("tensor"):
        t = value.tensor
        if t.float_val:
            return float(t.float_val[0])
        if t.double_val:
            return float(t.double_val[0])
        if t.tensor_content:
            dtype = {1: np.float32, 2: np.float64}.get(t.dtype)
            return float(np.frombuffer(t.tensor_content, dtype)[0]) if dtype else None
        return None
    if value.WhichOneof("value") == "simple_value":
        return float(value.simple_value)
    return None


def read_scalars(folder: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every scalar tag in a TensorBoard folder: tag -> (steps, values), sorted by step.

    A resumed run writes a second event file that repeats steps after its last checkpoint;
    the later value of a step wins. Returns {} when the folder has no event files or the
    TensorBoard protos are not installed.
    """
    files = sorted(Path(folder).glob("events.out.tfevents.*"))
    if not files:
        return {}
    try:
        from tensorboard.compat.proto import event_pb2
    except ImportError:
        return {}
    found: dict[str, dict[int, float]] = {}
    for f in sorted(files, key=lambda p: p.stat().st_mtime):
        for record in _records(f.read_bytes()):
            try:
                event = event_pb2.Event.FromString(record)
            except Exception:  # a corrupt record: skip it, keep the rest
                continue
            for v in event.summary.value:
                x = _scalar(v)
                if x is not None:
                    found.setdefault(v.tag, {})[int(event.step)] = x
    out = {}
    for tag, points in found.items():
        steps = np.array(sorted(points))
        out[tag] = (steps, np.array([points[s] for s in steps]))
    return out


def training_curves(run: RunFolder) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The run's training stages (`ckpt`, `ckpt_stage1`, ...) -> their scalars."""
    if not run.exists:
        return {}
    out = {}
    for tb in sorted(run.path.glob("ckpt*/tensorboard")):
        scalars = read_scalars(tb)
        if scalars:
            out[tb.parent.name] = scalars
    return out
