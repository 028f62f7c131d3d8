"""Table 5 models: the CRF decoders, the encoder-decoder, decoding of tiny trained models, configs."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from lrcn_tf.configs import ConfigError, apply_overrides, build, registry
from lrcn_tf.configs.common import TrainConfig
from lrcn_tf.data import text
from lrcn_tf.models import captioner, decoding, video_description
from lrcn_tf.training import trainer

SIZES = dict(num_layers=2, embed_dim=6, hidden=8, seed=3)


def test_crf_decoder_is_the_captioner_decoder():
    model = video_description.build_crf_decoder(12, 7, **SIZES)
    assert captioner.decoder_structure(model) == (2, False)  # unfactored: the vector meets lstm1
    logits = model({"cond": np.ones((3, 7), np.float32), "words": np.zeros((3, 5), np.int32)})
    assert tuple(logits.shape) == (3, 5, 12)


def test_encoder_ignores_padding_and_feeds_the_decoder():
    model, encoder, decoder = video_description.build_encoder_decoder(9, 12, **SIZES)
    short = encoder.predict(np.array([[3, 4]], np.int32), verbose=0)
    padded = encoder.predict(np.array([[3, 4, 0, 0]], np.int32), verbose=0)
    assert len(short) == 4  # h1, c1, h2, c2
    for a, b in zip(short, padded):
        np.testing.assert_allclose(a, b, atol=1e-6)
    words = np.zeros((2, 4), np.int32)
    logits = model({"source": np.array([[3, 4, 5], [6, 7, 0]], np.int32), "words": words})
    assert tuple(logits.shape) == (2, 4, 12)
    # The decoder sees the source only through its initial states.
    assert not np.allclose(logits[0], logits[1])
    assert decoder.get_layer("lstm1") is model.get_layer("lstm1")


def test_encoder_decoder_greedy_decoding_matches_the_training_graph():
    model, encoder, decoder = video_description.build_encoder_decoder(9, 12, **SIZES)
    rng = np.random.default_rng(0)
    for w in model.weights:  # large random weights: no near-ties between untrained logits
        w.assign(rng.normal(0.0, 1.0, w.shape).astype(np.float32))
    source = np.array([[3, 4, 5], [6, 7, 0], [8, 2, 2]], np.int32)
    states = encoder.predict(source, verbose=0)
    gen = decoding.CaptionGenerator(decoder, max_length=6)
    out = gen.beam_search(video_description.empty_cond(3), beam_size=1, initial_states=states)
    for i, tokens in enumerate(out.tokens):
        words = np.array([[text.EOS, *tokens]], np.int32)
        logits = model({"source": source[i : i + 1], "words": words})
        steps = np.asarray(logits[0]).argmax(-1)
        assert steps[: len(tokens)].tolist() == tokens
        if len(tokens) < 6:
            assert steps[len(tokens)] == text.EOS


def _tiny_task():
    """Three 'segments' with distinct inputs and one sentence each, word ids from 2."""
    sentences = [[2, 3, 4], [2, 5, 6, 7], [8, 4]]
    inp, tgt = zip(*(text.time_steps(s, 6) for s in sentences))
    cond = np.eye(3, 5, dtype=np.float32)
    source = np.array([[1, 2], [3, 0], [4, 4]], np.int32)
    return sentences, np.stack(inp), np.stack(tgt), cond, source


def _train(model, key, x, inp, tgt):
    ds = tf.data.Dataset.from_tensors(({key: x, "words": inp}, tgt))
    cfg = TrainConfig(
        base_lr=0.05,
        weight_decay=0.0,
        lr_policy="fixed",
        max_iter=200,
        clip_gradients=10.0,
        checkpoint_every=10_000,
        log_every=100,
    )
    return cfg, ds


@pytest.mark.parametrize("architecture", ["decoder", "encoder_decoder"])
def test_tiny_trained_model_decodes_its_sentences(tmp_path, architecture):
    sentences, inp, tgt, cond, source = _tiny_task()
    vocab = text.Vocabulary([f"w{i}" for i in range(2, 9)])
    if architecture == "decoder":
        model = decoder = video_description.build_crf_decoder(len(vocab), 5, **SIZES)
        encoder, key, x = None, "cond", cond
    else:
        model, encoder, decoder = video_description.build_encoder_decoder(5, len(vocab), **SIZES)
        key, x = "source", source
    cfg, ds = _train(model, key, x, inp, tgt)
    history = trainer.fit(model, ds, captioner.make_loss_fn(), cfg, tmp_path / "ckpt")
    assert history["losses"][-1][1] < 0.5 * 20  # per-word cross-entropy < 0.5 (x loss weight 20)
    got = video_description.describe(decoder, vocab, x, encoder=encoder, max_length=10)
    assert got == [vocab.decode(s) for s in sentences]


def test_table5_configs_and_rules():
    for name in registry.names("table5/"):
        paper = build(name, "paper")
        assert paper.num_layers == 2 and paper.lstm_units == 1000
        assert paper.train.base_lr == 0.01 and paper.train.clip_gradients == 10.0
        assert paper.train.weight_decay == 0.0 and paper.train.gamma == 0.5
        assert paper.beam_size == 1 and paper.max_decode_length == 50
    assert len(registry.names("table5/")) == 3
    cfg = build("table5/lstm_enc_dec_crf_max", "smoke")
    with pytest.raises(ConfigError, match="reads input 'map_words'"):
        registry.validate(apply_overrides(cfg, ["input=crf_prob"]))
    with pytest.raises(ConfigError, match="not words"):
        registry.validate(build("table5/lstm_dec_crf_max", "smoke", ["input=map_words"]))
    with pytest.raises(ConfigError, match="eval_split"):
        registry.validate(dataclasses.replace(cfg, eval_split="train"))


def test_prepare_cli_reports_a_malformed_line(tmp_path):
    src = tmp_path / "tacos.jsonl"
    labels = {s: ["NULL", "x"] for s in ("activity", "tool", "object", "source", "target")}
    header = {"format": "tacos_multilevel", "version": 1, "labels": labels}
    src.write_text(json.dumps(header) + "\n" + '{"video": "v", "start": 1,\n')
    cmd = [sys.executable, "-m", "lrcn_tf.prepare", "--dataset", "tacos_multilevel"]
    proc = subprocess.run(
        [*cmd, f"--src={src}", f"--out={tmp_path / 'out'}"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        check=False,
    )
    assert proc.returncode != 0
    assert f"{src}:2: not valid JSON" in proc.stderr
