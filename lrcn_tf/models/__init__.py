"""lrcn_tf.models."""
