"""The streamed zip (thumbnailer/zipstream.py): what unzip tools read, made piece by piece."""

import io
import zipfile

from thumbnailer.zipstream import CHUNK_BYTES, stream_zip


def test_the_pieces_make_a_zip_holding_each_member_byte_for_byte():
    big = bytes(range(256)) * (3 * CHUNK_BYTES // 256 + 7)  # several chunks and a bit
    members = [("a/photo.jpg", big), ("a/photo_128x128.jpg", b"small"), ("b/other.png", b"")]

    pieces = list(stream_zip((name, lambda data=data: io.BytesIO(data)) for name, data in members))

    assert max(len(piece) for piece in pieces) < 2 * CHUNK_BYTES  # never the whole archive at once
    archive = zipfile.ZipFile(io.BytesIO(b"".join(pieces)))
    assert archive.testzip() is None
    assert [(info.filename, archive.read(info)) for info in archive.infolist()] == members


def test_the_same_files_give_the_same_bytes():
    def make():
        return b"".join(stream_zip([("x.jpg", lambda: io.BytesIO(b"abc"))]))

    assert make() == make()
