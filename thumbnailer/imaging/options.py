"""What kind of thumbnail is asked for: mode, focus point, output format, quality. Pure."""

from __future__ import annotations

from dataclasses import dataclass

MODES = ("fit", "fill", "smart")
FORMATS = ("auto", "jpeg", "png", "webp", "avif")
# The formats whose encoder takes a quality (1-100); PNG and GIF are lossless.
LOSSY_FORMATS = ("JPEG", "WEBP", "AVIF")


@dataclass(frozen=True)
class ThumbnailOptions:
    """fit: inside the box, aspect kept. fill: exactly the box, cropped around `focus` (default the
    centre). smart: exactly the box, cropped on the most detailed part. format "auto" follows the
    input's family; quality None is the format's own default."""

    mode: str = "fit"
    focus: tuple[float, float] | None = None
    format: str = "auto"
    quality: int | None = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}.")
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}.")
        if self.focus is not None and not all(0.0 <= value <= 1.0 for value in self.focus):
            raise ValueError("focus must be two fractions between 0 and 1, like 0.5,0.3.")
        if self.quality is not None and not 1 <= self.quality <= 100:
            raise ValueError("quality must be a whole number from 1 to 100.")

    @classmethod
    def from_text(cls, *, mode: str, focus: str, output_format: str, quality: str) -> ThumbnailOptions:
        """Options from form or command-line text (empty means the default); ValueError names the field."""
        focus_point = None
        if focus:
            try:
                x, y = (float(part) for part in focus.split(","))
            except ValueError:
                raise ValueError("focus must be two fractions between 0 and 1, like 0.5,0.3.") from None
            focus_point = (x, y)
        quality_value = None
        if quality:
            try:
                quality_value = int(quality)
            except ValueError:
                raise ValueError("quality must be a whole number from 1 to 100.") from None
        return cls(
            mode=mode or "fit", focus=focus_point, format=output_format or "auto", quality=quality_value
        )

    @property
    def crops(self) -> bool:
        return self.mode in ("fill", "smart")


# fit, in the input's family, at each format's default quality: what every thumbnail was before options.
DEFAULT_OPTIONS = ThumbnailOptions()
