"""Named, frozen configs for every table row; see `registry`.

Each table has a module here (`table1.py`, ...) whose factories are registered by name.
"""

from lrcn_tf.configs.registry import (
    PRESETS,
    ConfigError,
    apply_overrides,
    build,
    names,
    register,
    to_dict,
)

__all__ = ["PRESETS", "ConfigError", "apply_overrides", "build", "names", "register", "to_dict"]
