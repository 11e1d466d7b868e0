"""A zip written as it is sent: members are copied in pieces, so no whole file or archive is held in memory.

Standard library only. zipfile writes to a sink that cannot seek, so it puts each member's
sizes and CRC in a data descriptor after its data, which every unzip tool reads.
"""

import io
import zipfile
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

CHUNK_BYTES = 256 * 1024
# A fixed timestamp, as in each job's own zip: the same files give the same bytes.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


class _Sink(io.RawIOBase):
    """Collects what zipfile writes until the generator hands it on."""

    def __init__(self):
        self._pieces: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._pieces.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._pieces)
        self._pieces.clear()
        return data


def stream_zip(members: Iterable[tuple[str, Callable[[], BinaryIO]]]) -> Iterator[bytes]:
    """Yield the bytes of a zip of (name, open) members, stored as they are (images are compressed already)."""
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, open_member in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIMESTAMP)
            info.external_attr = 0o644 << 16
            with open_member() as source, archive.open(info, "w", force_zip64=True) as target:
                while chunk := source.read(CHUNK_BYTES):
                    target.write(chunk)
                    yield sink.take()
            yield sink.take()
    yield sink.take()
