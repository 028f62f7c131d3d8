"""lrcn_tf.data."""
