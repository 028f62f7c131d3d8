import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def tiny_ucf101(tmp_path_factory, num_groups: int = 10):
    """A tiny synthetic_ucf101, RGB and flow: 2 classes x `num_groups` groups, one clip each
    (with 10 groups split 1 tests on g01-g07 and trains on g08-g10)."""
    from lrcn_tf.data.embedded import ensure_ucf101

    return ensure_ucf101(
        tmp_path_factory.mktemp("ucf") / "synthetic_ucf101",
        num_classes=2,
        num_groups=num_groups,
        clips_per_group=1,
        workers=1,
        progress=False,
    )


@pytest.fixture(scope="module")
def two_class_ucf101(tmp_path_factory):
    """`tiny_ucf101` with 10 groups, made once per test module."""
    return tiny_ucf101(tmp_path_factory)
