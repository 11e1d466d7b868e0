"""Colour: any decoded mode to 8-bit, and embedded ICC profiles or CMYK to sRGB."""

from __future__ import annotations

import functools
import io

from PIL import Image, ImageChops, ImageCms


def resizable(image: Image.Image) -> Image.Image:
    """Convert to an 8-bit mode that resamples well: L, LA, RGB, RGBA or CMYK."""
    mode = image.mode
    if mode in ("L", "LA", "RGB", "RGBA", "CMYK"):
        return image
    if mode in ("P", "PA"):
        return image.convert("RGBA" if image.has_transparency_data else "RGB")
    if mode == "1":
        return image.convert("L")
    if mode.startswith("I") or mode == "F":
        return _to_8bit_grey(image)
    if mode == "LAB":
        return ImageCms.applyTransform(image, _lab_to_srgb())
    if mode in ("La", "RGBa"):
        return image.convert({"La": "LA", "RGBa": "RGBA"}[mode])
    return image.convert("RGBA" if "A" in mode else "RGB")


def _to_8bit_grey(image: Image.Image) -> Image.Image:
    """16-bit, 32-bit and float grey to 8-bit L by scaling the value range, not clipping it.

    A plain convert("L") clips every value above 255 to white, which is how a 16-bit PNG
    becomes a blank thumbnail. 16-bit data uses its full range (v / 257); 32-bit integers and
    floats are scaled by what they hold, as there is no standard range.
    """
    if image.mode.startswith("I;16"):
        return image.convert("I").point(lambda value: value / 257).convert("L")
    if image.mode == "I":
        low, high = image.getextrema()
        if low >= 0 and high <= 255:
            return image.convert("L")
        if low >= 0 and high <= 65535:
            return image.point(lambda value: value / 257).convert("L")
    else:  # "F"
        low, high = image.getextrema()
        if low >= 0 and high <= 1:
            return image.point(lambda value: value * 255).convert("L")
        if low >= 0 and high <= 255:
            return image.convert("L")
    span = (high - low) or 1
    return image.point(lambda value: (value - low) * 255 / span).convert("L")


def has_alpha(image: Image.Image) -> bool:
    return image.mode in ("LA", "RGBA", "PA")


@functools.cache
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@functools.cache
def _lab_to_srgb() -> ImageCms.ImageCmsTransform:
    return ImageCms.buildTransform(ImageCms.createProfile("LAB"), _srgb_profile(), "LAB", "RGB")


@functools.lru_cache(maxsize=32)
def _transform_to_srgb(icc_profile: bytes, in_mode: str, out_mode: str) -> ImageCms.ImageCmsTransform:
    source_profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
    return ImageCms.buildTransform(
        source_profile, _srgb_profile(), in_mode, out_mode, ImageCms.Intent.PERCEPTUAL
    )


def to_srgb(image: Image.Image, icc_profile: bytes | None) -> Image.Image:
    """Convert from the embedded ICC profile (or CMYK) to sRGB; done at thumbnail size, so cheap."""
    if image.mode not in ("RGB", "RGBA", "CMYK"):
        # Grey images are left as they are: grey ICC profiles are almost always a gamma
        # close to sRGB's, and lcms cannot carry an alpha band through a grey transform.
        return image
    out_mode = "RGBA" if image.mode == "RGBA" else "RGB"
    if icc_profile:
        try:
            converted = ImageCms.applyTransform(image, _transform_to_srgb(icc_profile, image.mode, out_mode))
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            converted = None  # a broken or mismatched profile: fall back to the plain numbers
        if converted is not None:
            if image.mode == "RGBA" and converted.mode == "RGBA":
                converted.putalpha(image.getchannel("A"))
            return converted
    if image.mode == "CMYK":
        return _cmyk_to_srgb_without_profile(image)
    return image


# What solid process inks look like on coated paper, in sRGB (the usual SWOP/FOGRA swatches).
# Pillow's own CMYK->RGB treats cyan as pure (0, 255, 255), far brighter than any print.
_PROCESS_INKS = ((0, 174, 239), (236, 0, 140), (255, 242, 0), (35, 31, 32))


@functools.cache
def _ink_curves() -> tuple[tuple[list[int], ...], ...]:
    """Per output band, per ink: how much light is left at each ink amount 0-255."""
    return tuple(
        tuple(
            [round(255 - amount * (255 - ink[band]) / 255) for amount in range(256)] for ink in _PROCESS_INKS
        )
        for band in range(3)
    )


def _cmyk_to_srgb_without_profile(image: Image.Image) -> Image.Image:
    """CMYK with no embedded profile, rendered as overprinted process inks (a multiply model).

    Without a profile the numbers still mean ink on paper; each ink filters the light the
    others leave, so pure cyan shows as printed cyan (0, 174, 239) and C+M+Y+K as near black.
    Done on the thumbnail, so the lookup-table passes cost a fraction of a millisecond.
    """
    inks = image.split()
    bands = []
    for curves in _ink_curves():
        band = inks[0].point(curves[0])
        for ink, curve in zip(inks[1:], curves[1:], strict=True):
            band = ImageChops.multiply(band, ink.point(curve))
        bands.append(band)
    return Image.merge("RGB", bands)
