"""Job rows made directly, for tests of reads and state changes that need no upload."""

from thumbnailer.models import Job


def make_job(**fields) -> Job:
    values = {
        "client_name": "Holiday photo.jpg",
        "stem": "Holiday_photo",
        "sizes": ["128x128", "64x64"],
        "original_path": "jobs/x/Holiday_photo.jpg",
        "original_format": "JPEG",
        "original_width": 4000,
        "original_height": 3000,
        "original_bytes": 4_182_311,
        "sha256": "ab" * 32,
        "options_key": "sizes=128x128,64x64",
    } | fields
    return Job.objects.create(**values)
