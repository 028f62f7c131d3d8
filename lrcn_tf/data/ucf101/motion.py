"""The motion of each synthetic_ucf101 class: per frame (centre x, centre y, scale, angle).

Every class draws its speed, timing and placement from the same distributions as its pair
partner, so the partners differ only in the order of their per-frame motions (or, for the
Spin pair, in the sense of rotation). Positions, sizes and angles that a class does not
animate are drawn uniformly, independently of the class.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

MAX_SPEED = 2.5  # pixels per frame at 60-pixel-high frames: flow stays well inside +-8 px
ZOOM = (0.5, 2.0)  # scale range of the Grow/Shrink classes


@dataclasses.dataclass(frozen=True)
class Geometry:
    height: int
    width: int
    radius: float  # the object's nominal radius in pixels
    margin: float  # kept free at the frame's edges

    @property
    def k(self) -> float:
        return self.height / 60.0

    def span(self, extent: float, axis: str) -> tuple[float, float]:
        """Allowed centre coordinates on `axis` for an object reaching `extent` from its centre."""
        size = self.width if axis == "x" else self.height
        return self.margin + extent, size - self.margin - extent


def _there_and_back(rng, n: int, lo: float, hi: float, first: float, max_step: float) -> np.ndarray:
    """Moves one way until a switch frame drawn from the middle 30%, then back; fits [lo, hi].

    `first` (+1 or -1) is the direction of the first leg; the switch frame, the speed (a
    fraction of what fits) and the placement are drawn the same way for both directions.
    """
    tau = int(round(rng.uniform(0.35, 0.65) * (n - 1)))
    longest = max(tau, n - 1 - tau, 1)
    step = min(rng.uniform(0.6, 0.95) * (hi - lo) / longest, max_step)
    t = np.arange(n)
    rel = first * step * (np.minimum(t, tau) - np.maximum(t - tau, 0))
    return rel + rng.uniform(lo - rel.min(), hi - rel.max())


def _place(rng, geom: Geometry, extent: float) -> tuple[float, float]:
    return rng.uniform(*geom.span(extent, "x")), rng.uniform(*geom.span(extent, "y"))


def _translate(rng, n, geom, axis, first):
    lo, hi = geom.span(geom.radius, axis)
    track = _there_and_back(rng, n, lo, hi, first, MAX_SPEED * geom.k)
    other = rng.uniform(*geom.span(geom.radius, "y" if axis == "x" else "x"))
    x, y = (track, np.full(n, other)) if axis == "x" else (np.full(n, other), track)
    return x, y, np.ones(n), np.full(n, rng.uniform(0, 360))


def _zoom(rng, n, geom, first):
    log_z = _there_and_back(rng, n, math.log(ZOOM[0]), math.log(ZOOM[1]), first, np.inf)
    cx, cy = _place(rng, geom, geom.radius * ZOOM[1])
    return np.full(n, cx), np.full(n, cy), np.exp(log_z), np.full(n, rng.uniform(0, 360))


def _circle(rng, n, geom, clockwise):
    room = (geom.height - 2 * (geom.margin + geom.radius)) / 2
    r_path = rng.uniform(0.6, 0.9) * room
    omega = 2 * math.pi * rng.uniform(0.8, 1.3) / (n - 1)
    omega = min(omega, MAX_SPEED * geom.k / r_path)
    cx, cy = _place(rng, geom, geom.radius + r_path)
    # Image y points down, so an increasing angle turns clockwise on the screen.
    theta = rng.uniform(0, 2 * math.pi) + (1 if clockwise else -1) * omega * np.arange(n)
    x, y = cx + r_path * np.cos(theta), cy + r_path * np.sin(theta)
    return x, y, np.ones(n), np.full(n, rng.uniform(0, 360))


def _spin(rng, n, geom, clockwise):
    cx, cy = _place(rng, geom, geom.radius)
    rate = rng.uniform(8.0, 14.0)  # degrees per frame: 1-3 px at the rim
    # OpenCV angles are counter-clockwise on the screen, so clockwise spin decreases them.
    angle = rng.uniform(0, 360) + (-1 if clockwise else 1) * rate * np.arange(n)
    return np.full(n, cx), np.full(n, cy), np.ones(n), angle


def _speed(rng, n, geom, accelerate):
    theta = rng.uniform(0, 2 * math.pi)
    c, s = math.cos(theta), math.sin(theta)
    (x0, x1), (y0, y1) = geom.span(geom.radius, "x"), geom.span(geom.radius, "y")
    fits = min((x1 - x0) / max(abs(c), 1e-6), (y1 - y0) / max(abs(s), 1e-6))
    mean = min(rng.uniform(0.6, 0.95) * fits / (n - 1), MAX_SPEED * geom.k / 1.8)
    profile = 0.2 + 1.6 * (np.arange(n - 1) + 0.5) / (n - 1)  # 0.2x -> 1.8x the mean speed
    if not accelerate:
        profile = profile[::-1]
    dist = np.concatenate([[0.0], np.cumsum(mean * profile)])
    x, y = dist * c, dist * s
    x = x + rng.uniform(x0 - x.min(), x1 - x.max())
    y = y + rng.uniform(y0 - y.min(), y1 - y.max())
    return x, y, np.ones(n), np.full(n, rng.uniform(0, 360))


# class -> (what it does, motion function of (rng, n, geom))
CLASS_MOTIONS = {
    "SlowThenFast": (
        "translates in a random direction, speed rising 0.2x -> 1.8x",
        lambda r, n, g: _speed(r, n, g, True),
    ),
    "Slowing": (
        "translates in a random direction, speed falling 1.8x -> 0.2x",
        lambda r, n, g: _speed(r, n, g, False),
    ),
    "CircleClockwise": (
        "travels clockwise along a circle (0.8-1.3 turns)",
        lambda r, n, g: _circle(r, n, g, True),
    ),
    "CircleCounterclockwise": (
        "travels counter-clockwise along a circle",
        lambda r, n, g: _circle(r, n, g, False),
    ),
    "LeftThenRight": ("moves left, then right", lambda r, n, g: _translate(r, n, g, "x", -1)),
    "RightThenLeft": ("moves right, then left", lambda r, n, g: _translate(r, n, g, "x", 1)),
    "SpinClockwise": (
        "rotates clockwise in place, 8-14 degrees a frame",
        lambda r, n, g: _spin(r, n, g, True),
    ),
    "SpinCounterclockwise": (
        "rotates counter-clockwise in place",
        lambda r, n, g: _spin(r, n, g, False),
    ),
    "GrowThenShrink": ("grows, then shrinks (scale 0.5-2.0)", lambda r, n, g: _zoom(r, n, g, 1)),
    "ShrinkThenGrow": ("shrinks, then grows", lambda r, n, g: _zoom(r, n, g, -1)),
    "UpThenDown": ("moves up, then down", lambda r, n, g: _translate(r, n, g, "y", -1)),
    "DownThenUp": ("moves down, then up", lambda r, n, g: _translate(r, n, g, "y", 1)),
}


def sample_motion(cls: str, n: int, geom: Geometry, rng: np.random.Generator) -> np.ndarray:
    """Per-frame (centre x, centre y, scale, angle in degrees) of class `cls`: float [n, 4]."""
    x, y, scale, angle = CLASS_MOTIONS[cls][1](rng, n, geom)
    return np.stack([x, y, scale, angle], axis=1)
