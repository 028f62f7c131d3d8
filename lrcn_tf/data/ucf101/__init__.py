"""UCF-101 (Table 1): the release format, preparation into shards, the frame index and tf.data.

format.py (split lists, classInd, prepared-folder info) · prepare.py (videos -> shards) ·
shards.py (one shard's SequenceExamples) · index.py (frame offsets) · ops.py (host decode) ·
pipeline.py (tf.data) · synthetic.py + motion.py (the embedded synthetic_ucf101).
"""
