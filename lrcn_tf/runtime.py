"""What every entry point needs before it trains: seeds, precision, folders, run records."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

PRECISION_MODES = ("auto", "off", "mixed_float16", "mixed_bfloat16")

_VERSIONED_PACKAGES = (
    "lrcn-tf",
    "tensorflow",
    "keras",
    "jax",
    "numpy",
    "av",
    "opencv-contrib-python-headless",
    "simplejpeg",
    "pycocoevalcap",
    "absl-py",
)


# Whether this process writes run folders (set False on the non-chief workers of a run across
# machines, lrcn_tf.training.distributed.build): they compute the same run ids and paths but
# leave the files to the chief.
_CHIEF = True


def set_chief(chief: bool) -> None:
    """Declares whether this process is the one that writes run folders and results."""
    global _CHIEF
    _CHIEF = bool(chief)


def is_chief() -> bool:
    """Whether this process writes run folders and results (True unless a non-chief worker)."""
    return _CHIEF


def data_dir() -> Path:
    """The cache folder for embedded (generated) datasets: `$LRCN_DATA_DIR` or ~/.cache/lrcn_tf."""
    root = os.environ.get("LRCN_DATA_DIR") or os.path.join("~", ".cache", "lrcn_tf")
    return Path(root).expanduser()


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seeds Python, NumPy and the Keras backend; asks TF for deterministic ops.

    Op determinism makes reruns bit-identical on CPU (and on GPU for most ops) at some cost in
    speed; the `paper` preset keeps it on because the original code fixed seed 1701.
    """
    import keras

    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    keras.utils.set_random_seed(seed)
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def gpu_visible() -> bool:
    """Whether the active Keras backend sees a GPU."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    if backend == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def configure_precision(mode: str) -> str:
    """Sets the global Keras dtype policy and returns the policy name in force.

    `auto` is mixed_float16 when a GPU is visible and float32 on CPU, where float16 math is
    emulated and slower.
    """
    import keras

    if mode not in PRECISION_MODES:
        raise ValueError(f"--mixed_precision {mode!r}: choose one of {', '.join(PRECISION_MODES)}")
    if mode == "auto":
        mode = "mixed_float16" if gpu_visible() else "off"
    policy = "float32" if mode == "off" else mode
    keras.mixed_precision.set_global_policy(policy)
    return policy


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that decide our numbers."""
    versions = {"python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit(path: str | Path = ".") -> str:
    """The commit of the checkout at `path`, with `-dirty` if it has changes; `unknown` outside git."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def run_id_for(prefix: str, config: dict[str, Any]) -> str:
    """A run id that depends only on what was asked for.

    The same command gets the same run folder, which is what lets a killed run resume from its
    checkpoints; a different config gets a different folder, so nothing is overwritten.
    """
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return f"{prefix}-{hashlib.sha256(blob).hexdigest()[:10]}"


class Run:
    """A run folder under `workdir`: config.json, versions.json, commit.txt, log.txt, outputs.

    On a non-chief worker (`is_chief()` False) the id and paths are the same but nothing is
    written: no folder, no records, and `log` goes nowhere.
    """

    def __init__(self, workdir: str | Path, prefix: str, config: dict[str, Any]):
        self.id = run_id_for(prefix, config)
        self.dir = Path(workdir) / self.id
        self.config = config
        self.resumed = (self.dir / "config.json").exists()
        self.writes = is_chief()
        if not self.writes:
            self.logger = logging.getLogger(f"lrcn_tf.run.{self.id}.worker")
            self.logger.propagate = False
            if not self.logger.handlers:
                self.logger.addHandler(logging.NullHandler())
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(self.dir / "config.json", config)
        _write_json_atomic(self.dir / "versions.json", package_versions())
        (self.dir / "commit.txt").write_text(git_commit(Path(__file__).parent) + "\n")
        self.logger = _file_logger(self.id, self.dir / "log.txt")
        self.logger.info(
            "run %s %s in %s", self.id, "resumed" if self.resumed else "started", self.dir
        )
        self.logger.info("command: %s", " ".join(sys.argv))

    def path(self, *parts: str) -> Path:
        """A path inside the run folder (its parent folders created, by the chief)."""
        p = self.dir.joinpath(*parts)
        if self.writes:
            p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def log(self, msg: str, *args: Any) -> None:
        self.logger.info(msg, *args)


def _file_logger(name: str, path: Path) -> logging.Logger:
    logger = logging.getLogger(f"lrcn_tf.run.{name}")
    logger.setLevel(logging.INFO)
    if not any(getattr(h, "baseFilename", None) == str(path.resolve()) for h in logger.handlers):
        handler = logging.FileHandler(path)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        logger.addHandler(handler)
    return logger


def _write_json_atomic(path: Path, data: Any) -> None:
    # The temp file is this process's: two processes may open the same run folder at once
    # (rows of a table in parallel workers opening the shared pre-trained CNN's folder).
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Writes `text` to `path` through a temp file and a rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
