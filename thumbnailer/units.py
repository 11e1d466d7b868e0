"""Byte counts in words, one way everywhere: the page, its messages and the JSON errors. Pure."""

BINARY_UNITS = ("KiB", "MiB", "GiB", "TiB")


def human_size(count: int) -> str:
    """`512` -> `"512 bytes"`, `30_000` -> `"29.3 KiB"`, `25 * 1024**2` -> `"25 MiB"` (binary units, one decimal)."""
    if count < 1024:
        return "1 byte" if count == 1 else f"{count} bytes"
    value = float(count)
    for unit in BINARY_UNITS:
        value /= 1024
        if value < 1024 or unit == BINARY_UNITS[-1]:
            break
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"
