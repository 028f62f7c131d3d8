"""Where every JPEG of a prepared shard lies in its TFRecord file, so that training reads only
the 16 frames of a clip instead of whole videos.

A shard file `shards/<modality>/NAME.tfrecord` gets an index `shards/<modality>/NAME.index.npz`:
per video (in file order) its name, frame count, height and width, and per frame the byte
offset and length of its JPEG in the file. A JPEG inside a SequenceExample is stored as raw
bytes, so these spans can be handed to the decoder as they are. Prepare writes the index with
the shard; for a folder prepared before there were indexes (or whose index does not match
its shard) it is rebuilt on first use by reading the shard once through TFRecordDataset,
which checks every record's CRC, and saved beside it when the folder is writable.

Reading by index skips TFRecord's per-read CRC check of whole videos (the JPEG decoder still
rejects a damaged frame, and the error names the video, frame and file). Measured on the
benchmark's 60x80 shards: reading and parsing whole records cost about 4 us per used frame,
a sixth of decoding one.
"""

from __future__ import annotations

import mmap
import os
import threading
import warnings
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lrcn_tf.data.ucf101.format import shard_file
from lrcn_tf.errors import UserError

VERSION = 1
_HEADER, _FOOTER = 12, 4  # TFRecord framing: length (8) + its CRC (4), data, data CRC (4)


class ShardIndexError(UserError):
    """A shard and its index (or the dataset description) disagree."""


def _varint(buf, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def _fields(buf, start: int, end: int):
    """Protocol-buffer fields in buf[start:end]: (number, payload start, payload end), the
    payload being the bytes of a length-delimited field and empty for the other wire types."""
    i = start
    while i < end:
        tag, i = _varint(buf, i)
        kind = tag & 7
        if kind == 2:
            n, i = _varint(buf, i)
            yield tag >> 3, i, i + n
            i += n
        elif kind == 0:
            _, i = _varint(buf, i)
        elif kind in (1, 5):
            i += 8 if kind == 1 else 4
        else:
            raise ValueError(f"wire type {kind} at byte {i}: not a tf.train.SequenceExample")
        if i > end:
            raise ValueError(f"field runs past its message (byte {i} of {end})")


def _map_entries(buf, start: int, end: int):
    """(key bytes, (value start, value end)) of a protobuf map<string, message>."""
    for _, a, b in _fields(buf, start, end):
        key, value = None, (b, b)
        for number, c, d in _fields(buf, a, b):
            if number == 1:
                key = bytes(buf[c:d])
            elif number == 2:
                value = (c, d)
        yield key, value


def _values(buf, feature: tuple[int, int], kind: int):
    """The payload spans of a tf.train.Feature's list (kind 1 bytes, 3 int64)."""
    for number, a, b in _fields(buf, *feature):
        if number == kind:
            yield from ((c, d) for n, c, d in _fields(buf, a, b) if n == 1)


def _int64(buf, feature: tuple[int, int]) -> int:
    """The single value of an int64 Feature (packed, as protobuf writes it)."""
    for a, b in _values(buf, feature, 3):
        return _varint(buf, a)[0] if b > a else 0
    raise ValueError("int64 feature without a value")


def record_spans(record, modality: str) -> tuple[str, int, int, list[tuple[int, int]]]:
    """A serialized SequenceExample of ucf101_shards.video_example -> (video name, height,
    width, [(offset in the record, length)] of the modality's JPEGs)."""
    buf = memoryview(record)
    context, spans = {}, []
    for number, a, b in _fields(buf, 0, len(buf)):
        if number == 1:  # context: Features
            context.update(_map_entries(buf, a, b))
        elif number == 2:  # feature_lists: FeatureLists
            for key, (c, d) in _map_entries(buf, a, b):
                if key == modality.encode():
                    for _, e, f in _fields(buf, c, d):  # FeatureList.feature
                        spans += [(s, t - s) for s, t in _values(buf, (e, f), 1)]
    missing = {b"video", b"height", b"width"} - context.keys()
    if missing:
        raise ValueError(f"context lacks {sorted(k.decode() for k in missing)}")
    (s, t), *_ = _values(buf, context[b"video"], 1)
    name = bytes(buf[s:t]).decode()
    return name, _int64(buf, context[b"height"]), _int64(buf, context[b"width"]), spans


class IndexBuilder:
    """Collects the index of one shard file as its records are written or read, in order."""

    def __init__(self, modality: str):
        self.modality, self.position = modality, 0
        self.videos, self.counts, self.hw, self.offsets, self.lengths = [], [], [], [], []

    def add(self, record) -> None:
        self.append(len(record), record_spans(record, self.modality))

    def append(self, size: int, spans: tuple[str, int, int, list[tuple[int, int]]]) -> None:
        """Adds a record of `size` bytes given its `record_spans`."""
        name, h, w, frames = spans
        base = self.position + _HEADER
        self.videos.append(name)
        self.counts.append(len(frames))
        self.hw.append((h, w))
        self.offsets += [base + a for a, _ in frames]
        self.lengths += [n for _, n in frames]
        self.position += _HEADER + size + _FOOTER

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "version": np.int64(VERSION),
            "file_size": np.int64(self.position),
            "videos": np.array(self.videos, dtype=str),
            "counts": np.array(self.counts, np.int64),
            "hw": np.array(self.hw, np.int64).reshape(-1, 2),
            "offsets": np.array(self.offsets, np.int64),
            "lengths": np.array(self.lengths, np.int64),
        }


def index_file(shard: str | Path) -> Path:
    """The index of a shard file: NAME.tfrecord -> NAME.index.npz."""
    shard = Path(shard)
    return shard.with_name(shard.name.removesuffix(".tfrecord") + ".index.npz")


def write_index(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Writes an index atomically (a temp file, then a rename)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def build_index(shard: str | Path, modality: str) -> dict[str, np.ndarray]:
    """Reads a shard file once (TFRecordDataset checks each record's CRC) and indexes it."""
    import tensorflow as tf

    builder = IndexBuilder(modality)
    try:
        for record in tf.data.TFRecordDataset(str(shard)):
            builder.add(record.numpy())
    except (tf.errors.DataLossError, ValueError) as e:
        msg = getattr(e, "message", None) or str(e)
        raise ShardIndexError(f"{shard}: damaged shard, cannot index it: {msg}") from None
    return builder.arrays()


def saved_index(shard: str | Path) -> dict[str, np.ndarray] | None:
    """The saved index of a shard file, or None if it is missing, from another version, or
    written for a file of another size."""
    shard, path = Path(shard), index_file(shard)
    if not shard.is_file():
        raise ShardIndexError(f"{shard}: missing; rerun the prepare command to finish the folder")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        if int(arrays["version"]) == VERSION and int(arrays["file_size"]) == shard.stat().st_size:
            return arrays
    except (OSError, ValueError, KeyError, EOFError):
        pass  # missing or unreadable: rebuild
    return None


def index_shard(shard: str | Path, modality: str) -> dict[str, np.ndarray]:
    """Builds the index of a shard file and saves it beside the file when the folder allows."""
    shard = Path(shard)
    arrays = build_index(shard, modality)
    size = shard.stat().st_size
    if int(arrays["file_size"]) != size:
        raise ShardIndexError(
            f"{shard}: {size} bytes, but its records end at {arrays['file_size']}"
        )
    try:
        write_index(index_file(shard), arrays)
    except OSError as e:
        warnings.warn(
            f"cannot save the index of {shard} ({e.strerror or e}); it is rebuilt, by reading "
            "the whole shard, each time a pipeline starts",
            stacklevel=2,
        )
    return arrays


class FrameIndex:
    """The JPEG spans of a list of prepared videos of one modality, read from the shard files
    through read-only memory maps (the page cache's pages, no copies).

    Attributes:
      names, counts (frames a video), hw ([V, 2] height, width): per video, in the given order.
    """

    def __init__(self, data_dir, shards: dict[str, tuple[str, ...]], names, modality: str):
        wanted = {n: i for i, n in enumerate(names)}
        self.names = list(names)
        v = len(self.names)
        self.counts, self.hw = np.zeros(v, np.int64), np.zeros((v, 2), np.int64)
        self.file_of, self.first = np.zeros(v, np.int64), np.zeros(v, np.int64)
        offsets, lengths, seen, total = [], [], np.zeros(v, bool), 0
        self.files = []
        used = sorted(s for s, vids in shards.items() if not wanted.keys().isdisjoint(vids))
        paths = [shard_file(data_dir, modality, s) for s in used]
        indexes = [saved_index(p) for p in paths]
        todo = [k for k, z in enumerate(indexes) if z is None]  # older folders: built once
        desc = f"indexing {modality} shards (first use; saved for the next)"
        for k in tqdm(todo, desc=desc, leave=False, disable=not todo):
            indexes[k] = index_shard(paths[k], modality)
        # Per file: what identifies its contents (path, size, modification time) and the bytes
        # of all its frames decoded (for DecodedFrames, which keeps whole files or nothing).
        self.file_keys, self.decoded_bytes = [], []
        for path, z in zip(paths, indexes):
            stat = path.stat()
            self.file_keys.append((str(path), stat.st_size, stat.st_mtime_ns))
            self.decoded_bytes.append(int((z["counts"] * z["hw"].prod(axis=1) * 3).sum()))
            starts = np.concatenate([[0], np.cumsum(z["counts"])])
            for j, name in enumerate(z["videos"].tolist()):
                i = wanted.get(name)
                if i is None:
                    continue  # a video of another subset
                self.counts[i], self.hw[i] = z["counts"][j], z["hw"][j]
                self.file_of[i], self.first[i], seen[i] = len(self.files), total, True
                span = slice(starts[j], starts[j + 1])
                offsets.append(z["offsets"][span])
                lengths.append(z["lengths"][span])
                total += int(z["counts"][j])
            self.files.append(str(path))
        if not seen.all():
            lost = [self.names[i] for i in np.flatnonzero(~seen)[:3]]
            raise ShardIndexError(f"{data_dir}: {modality} shards lack the videos {lost} (of {v})")
        self.offsets = np.concatenate(offsets) if offsets else np.zeros(0, np.int64)
        self.lengths = np.concatenate(lengths) if lengths else np.zeros(0, np.int64)
        self._maps: list[memoryview] | None = None
        self._lock = threading.Lock()

    def _mapped(self) -> list[memoryview]:
        with self._lock:  # mapped on first use, once per process
            if self._maps is None:
                maps = []
                for f in self.files:
                    with open(f, "rb") as fh:
                        maps.append(memoryview(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)))
                self._maps = maps
            return self._maps

    def clips(self, videos, frames) -> tuple[list[memoryview], list[list[list[int]]]]:
        """Videos [B] and frame numbers [B, T] -> (each clip's file as bytes, each clip's
        [begin, end) byte spans of its frames), worked out for the whole batch at once."""
        rows = self.first[np.asarray(videos)][:, None] + np.asarray(frames)
        begin = self.offsets[rows]
        spans = np.stack([begin, begin + self.lengths[rows]], -1).tolist()
        maps = self._mapped()
        return [maps[f] for f in self.file_of[np.asarray(videos)].tolist()], spans

    def where(self, video: int, frame: int) -> str:
        """Names a frame for error messages."""
        return f"{self.names[video]} (in {self.files[self.file_of[video]]}), frame {frame}"

    def jpegs(self, videos, frames) -> np.ndarray:
        """Videos [B] and frame numbers [B, T] -> their JPEGs as bytes, object array [B, T]."""
        out = np.empty(np.shape(frames), object)
        for i, (data, spans) in enumerate(zip(*self.clips(videos, frames))):
            out[i] = [bytes(data[a:b]) for a, b in spans]
        return out
