"""lrcn_tf.evaluation."""
