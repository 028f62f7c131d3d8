"""lrcn-tf: Long-term Recurrent Convolutional Networks (Donahue et al., CVPR 2015) in Keras 3."""

__version__ = "0.1.0"
