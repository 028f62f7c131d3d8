"""lrcn_tf.training."""
