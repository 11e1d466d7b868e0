"""The image limits, read from the environment. Standard library only.

settings.py takes THUMBNAILER_MAX_PIXELS, _MAX_FRAMES, _DEFAULT_SIZES and _LARGEST_SIDE from here,
and `manage.py thumbnail` reads them here without importing Django, so both see the same variables
with the same defaults. Why each default is what it is: the comments beside them in settings.py.
"""

import os
from dataclasses import dataclass


def max_pixels() -> int:
    return env_int("THUMBNAILER_MAX_PIXELS", 100_000_000)


def max_frames() -> int:
    return env_int("THUMBNAILER_MAX_FRAMES", 300)


def default_sizes() -> str:
    return os.environ.get("THUMBNAILER_DEFAULT_SIZES", "128x128")


def largest_side() -> int:
    return env_int("THUMBNAILER_LARGEST_SIDE", 2048)


@dataclass(frozen=True, kw_only=True)
class Limits:
    """What the pipeline may decode and which thumbnail boxes it accepts."""

    max_pixels: int
    max_frames: int
    default_sizes: str
    largest_side: int

    @classmethod
    def from_environment(cls) -> "Limits":
        return cls(
            max_pixels=max_pixels(),
            max_frames=max_frames(),
            default_sizes=default_sizes(),
            largest_side=largest_side(),
        )


def env_int(name: str, default: int, *, old_name: str = "") -> int:
    """An integer from the environment: unset or empty means the default, anything else must be a number.

    `old_name` is the variable's earlier name, still read when the new one is unset. A ValueError,
    not ImproperlyConfigured, since this module must not import Django; settings.env_int wraps it.
    """
    raw = os.environ.get(name)
    if (raw is None or raw == "") and old_name:
        name, raw = old_name, os.environ.get(old_name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None
