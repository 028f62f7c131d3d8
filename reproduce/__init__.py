"""Thin absl programs, one per paper table; see each module's docstring for its contract."""
