"""tf.data pipelines over a prepared caption folder: training pairs, evaluation images.

Images are decoded, squashed (or resized) and cropped as the original's captioning data layer
did; captions become (input words, target words) pairs of `text.MAX_WORDS` + 1 steps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lrcn_tf.data import text
from lrcn_tf.data.captions.format import CAFFE_MEAN_BGR, shard_files


def _parse(serialized):
    import tensorflow as tf

    ex = tf.io.parse_single_example(
        serialized,
        {
            "image/encoded": tf.io.FixedLenFeature([], tf.string),
            "image/id": tf.io.FixedLenFeature([], tf.int64),
            "caption/ids": tf.io.VarLenFeature(tf.int64),
            "caption/lengths": tf.io.VarLenFeature(tf.int64),
        },
    )
    ids = tf.sparse.to_dense(ex["caption/ids"])
    lengths = tf.sparse.to_dense(ex["caption/lengths"])
    return ex["image/encoded"], ex["image/id"], tf.RaggedTensor.from_row_lengths(ids, lengths)


def time_steps_tf(ids, max_words: int = text.MAX_WORDS):
    """`lrcn_tf.data.text.time_steps` in TensorFlow: (input, target), each (max_words,) int32."""
    import tensorflow as tf

    ids = tf.cast(ids[:max_words], tf.int32)
    n = tf.shape(ids)[0]
    inp = tf.concat([[text.EOS], ids[: max_words - 1]], 0)
    inp = tf.pad(inp, [[0, max_words - tf.shape(inp)[0]]], constant_values=text.EOS)
    tgt = tf.concat([ids, tf.fill([tf.minimum(1, max_words - n)], text.EOS)], 0)
    tgt = tf.pad(tgt, [[0, max_words - tf.shape(tgt)[0]]], constant_values=text.IGNORE)
    return tf.ensure_shape(inp, [max_words]), tf.ensure_shape(tgt, [max_words])


def preprocess_image(
    jpeg,
    crop_size: int,
    train: bool,
    resize: int | None = None,
    pixel_scale: float = 1.0,
    mirror: bool = True,
    seed=None,
):
    """JPEG bytes -> float32 (crop_size, crop_size, 3); see `preprocess_array`."""
    import tensorflow as tf

    img = tf.io.decode_jpeg(jpeg, channels=3)
    return preprocess_array(img, crop_size, train, resize, pixel_scale, mirror, seed)


def preprocess_array(
    img,
    crop_size: int,
    train: bool,
    resize: int | None = None,
    pixel_scale: float = 1.0,
    mirror: bool = True,
    seed=None,
):
    """RGB uint8 image -> float32 (crop_size, crop_size, 3), BGR minus the Caffe mean, x scale.

    Training: a random crop and (if `mirror`) a random horizontal flip, as the original;
    evaluation: the centre crop. `resize` first squashes the image to resize x resize (the
    original's 256), if given. `seed` (int64 (2,)) makes the random ops stateless, which a
    checkpointed tf.data iterator needs.
    """
    import tensorflow as tf

    img = tf.cast(img, tf.float32)
    if resize:
        img = tf.image.resize(img, [resize, resize], antialias=True)
    if train:
        if seed is None:
            img = tf.image.random_crop(img, [crop_size, crop_size, 3])
            img = tf.image.random_flip_left_right(img) if mirror else img
        else:
            img = tf.image.stateless_random_crop(img, [crop_size, crop_size, 3], seed)
            if mirror:
                img = tf.image.stateless_random_flip_left_right(img, seed + [0, 1])
    else:
        h, w = tf.shape(img)[0], tf.shape(img)[1]
        top, left = (h - crop_size) // 2, (w - crop_size) // 2
        img = img[top : top + crop_size, left : left + crop_size]
    img = img[..., ::-1] - tf.constant(CAFFE_MEAN_BGR, tf.float32)
    return tf.ensure_shape(img * pixel_scale, [crop_size, crop_size, 3])


def train_pairs(
    data_dir: str | Path,
    batch_size: int,
    crop_size: int,
    *,
    split: str | Sequence[str] = "train",
    resize: int | None = None,
    pixel_scale: float = 1.0,
    mirror: bool = True,
    max_words: int = text.MAX_WORDS,
    seed: int = 1701,
    shuffle_buffer: int = 4096,
    cache: bool = False,
    repeat: bool = True,
):
    """(image, caption) pairs: ({"image": (B,S,S,3), "words": (B,T)}, targets (B,T)).

    Args:
      data_dir: a prepared folder.
      batch_size: pairs per batch (100 in the original); incomplete last batches are dropped.
      crop_size: square crop (227 for CaffeNet).
      split: which split to read, or several (("train", "restval")).
      resize: squash images to this size first (None: as stored).
      pixel_scale: multiplies the mean-subtracted pixels.
      mirror: random horizontal flips (the original's augmentation).
      max_words: time steps T (20).
      seed: shuffling and augmentation seed.
      shuffle_buffer: pairs in the shuffle buffer.
      cache: keep the encoded images in memory (small datasets).
      repeat: repeat forever (the trainer counts steps).
    """
    import tensorflow as tf

    files = shard_files(data_dir, split)
    ds = tf.data.Dataset.from_tensor_slices(files).shuffle(len(files), seed=seed)
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=min(4, len(files)))
    ds = ds.map(_parse, num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    if repeat:
        ds = ds.repeat()

    def pairs(jpeg, image_id, caps):
        n = caps.nrows()
        return tf.data.Dataset.zip(
            tf.data.Dataset.from_tensors(jpeg).repeat(n), tf.data.Dataset.from_tensor_slices(caps)
        )

    ds = ds.flat_map(pairs).shuffle(shuffle_buffer, seed=seed)
    # One stateless seed per pair: random crops and flips without stateful ops, so the trainer
    # can checkpoint the iterator and a resumed run sees the same batches.
    ds = tf.data.Dataset.zip(ds, tf.data.Dataset.random(seed=seed).batch(2))

    def make(pair, op_seed):
        jpeg, ids = pair
        image = preprocess_image(jpeg, crop_size, True, resize, pixel_scale, mirror, op_seed)
        inp, tgt = time_steps_tf(ids, max_words)
        return {"image": image, "words": inp}, tgt

    ds = ds.map(make, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def eval_images(
    data_dir: str | Path,
    split: str,
    batch_size: int,
    crop_size: int,
    *,
    resize: int | None = None,
    pixel_scale: float = 1.0,
):
    """Each image of `split` once, in TFRecord order: (images (B,S,S,3), image ids (B,))."""
    import tensorflow as tf

    ds = tf.data.TFRecordDataset(shard_files(data_dir, split)).map(
        _parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    ds = ds.map(
        lambda jpeg, image_id, caps: (
            preprocess_image(jpeg, crop_size, False, resize, pixel_scale),
            image_id,
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def read_jpegs(data_dir: str | Path, split: str) -> dict[int, bytes]:
    """{image_id: JPEG bytes} of a split (for sample pages)."""
    import tensorflow as tf

    out = {}
    for jpeg, image_id, _ in tf.data.TFRecordDataset(shard_files(data_dir, split)).map(_parse):
        out[int(image_id)] = bytes(jpeg.numpy())
    return out
