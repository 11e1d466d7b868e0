"""Byte counts in words (thumbnailer/units.py): the same units on the page and in every error."""

import pytest

from thumbnailer.units import human_size


@pytest.mark.parametrize(
    "count, words",
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (1023, "1023 bytes"),
        (1024, "1 KiB"),
        (30_000, "29.3 KiB"),
        (100_000, "97.7 KiB"),
        (25 * 1024**2, "25 MiB"),
        (int(2.5 * 1024**3), "2.5 GiB"),
        (3 * 1024**5, "3072 TiB"),
    ],
)
def test_human_size(count, words):
    assert human_size(count) == words


def test_the_page_states_the_limit_in_the_units_of_the_413(client, settings, media_root):
    settings.THUMBNAILER_MAX_UPLOAD_BYTES = 25 * 1024**2

    page = client.get("/").content.decode()

    assert "up to 25 MiB each" in page
