"""File names and size lists from untrusted client input (pure: no Django, no files).

test_security.py sends hostile names through the real upload; these tables pin each rule here.
"""

import pytest

from thumbnailer import naming

# (id, client's file name, stem)
STEMS = [
    ("plain name", "photo.jpg", "photo"),
    ("no name at all", None, "image"),
    ("empty name", "", "image"),
    ("relative path", "../../etc/passwd", "passwd"),
    ("absolute path", "/etc/passwd", "passwd"),
    ("Windows path", "C:\\Users\\me\\My Photo.jpeg", "My_Photo"),
    ("Windows relative path", "..\\..\\Windows\\evil.jpg", "evil"),
    ("folder only", "photos/", "image"),
    ("hidden file in a folder", "dir/.hidden.jpg", "hidden"),
    ("control characters", "evil\x00\x07\x1b[31m\tname.jpg", "evil_31m_name"),
    ("right-to-left override", "photo\u202egpj.exe", "photogpj"),
    ("accents and spaces", "Café déjà vu.jpeg", "Cafe_deja_vu"),
    ("compatibility letters", "\ufb01le \uff21.jpg", "file_A"),
    ("only non-Latin letters", "日本.png", "image"),
    ("only emoji", "\U0001f5bc\ufe0f.png", "image"),
    ("hidden file", ".htaccess", "htaccess"),
    ("dot then extension", "..jpg", "jpg"),
    ("double extension", "archive.tar.gz", "archive_tar"),
    ("only dots", "...", "image"),
    ("trailing dot", "name.", "name"),
    ("spaces around", " spaced out .png", "spaced_out"),
    ("leading dash", "-rf", "rf"),
    ("underscores around", "__init__.py", "init"),
    ("a thumbnail's name", "photo_128x128.jpg", "photo_128x128"),
    ("255 characters", "a" * 251 + ".jpg", "a" * 60),
    ("cut where a dash would end it", "a" * 59 + "-bbbb.jpg", "a" * 59),
]


@pytest.mark.parametrize("client_name, stem", [case[1:] for case in STEMS], ids=[case[0] for case in STEMS])
def test_safe_stem(client_name, stem):
    assert naming.safe_stem(client_name) == stem


@pytest.mark.parametrize(
    "client_name, extension, name",
    [
        ("photo.jpg", "jpg", "photo.jpg"),
        ("photo.png", "jpg", "photo.jpg"),
        ("../../etc/passwd", "jpg", "passwd.jpg"),
        ("C:\\Windows\\System32\\evil.exe", "png", "evil.png"),
        ("invoice.pdf.exe.jpg", "jpg", "invoice_pdf_exe.jpg"),
        (None, "png", "image.png"),
        ("", "webp", "image.webp"),
    ],
    ids=[
        "as sent",
        "extension from the content",
        "path",
        "Windows path",
        "double extension",
        "None",
        "empty",
    ],
)
def test_safe_upload_name(client_name, extension, name):
    assert naming.safe_upload_name(client_name, extension=extension) == name


@pytest.mark.parametrize(
    "stem, box, extension, name",
    [
        ("photo", (128, 128), "jpg", "photo_128x128.jpg"),
        ("photo", (128, 96), "png", "photo_128x96.png"),
        ("photo_128x128", (64, 64), "webp", "photo_128x128_64x64.webp"),
    ],
)
def test_thumbnail_name(stem, box, extension, name):
    assert naming.thumbnail_name(stem, box=box, extension=extension) == name


@pytest.mark.parametrize("stem, name", [("photo", "photo.zip"), ("image", "image.zip")])
def test_archive_name(stem, name):
    assert naming.archive_name(stem) == name


@pytest.mark.parametrize("box, text", [((128, 96), "128x96"), ((1, 1), "1x1"), ((4096, 64), "4096x64")])
def test_format_box(box, text):
    assert naming.format_box(box) == text


@pytest.mark.parametrize("box, text", [((128, 96), "128x96"), ((1, 1), "1x1"), ((4096, 64), "4096X64")])
def test_parse_box_reads_what_format_box_writes(box, text):
    assert naming.parse_box(text) == box


@pytest.mark.parametrize(
    "text, boxes",
    [
        ("128x128", [(128, 128)]),
        ("128x128,256x256", [(128, 128), (256, 256)]),
        ("256x256,128x128", [(256, 256), (128, 128)]),
        ("64X32", [(64, 32)]),
        (" 128x128 , 64x64 ,", [(128, 128), (64, 64)]),
        ("128x128,64x64,128x128", [(128, 128), (64, 64)]),
        ("1x1,4096x4096", [(1, 1), (4096, 4096)]),
    ],
    ids=[
        "one",
        "two",
        "order kept",
        "capital X",
        "whitespace and trailing comma",
        "duplicates once",
        "bounds",
    ],
)
def test_parse_boxes(text, boxes):
    assert naming.parse_boxes(text, largest=4096) == boxes


NOT_A_SIZE = "is not a size like 128x128."
OUT_OF_RANGE = "Each side of a size must be between 1 and 4096 pixels."
NO_SIZE = "Give at least one size like 128x128."


@pytest.mark.parametrize(
    "text, message",
    [
        ("big", f"'big' {NOT_A_SIZE}"),
        ("128", f"'128' {NOT_A_SIZE}"),
        ("128x", f"'128x' {NOT_A_SIZE}"),
        ("128 x 128", f"'128 x 128' {NOT_A_SIZE}"),
        ("1.5x2", f"'1.5x2' {NOT_A_SIZE}"),
        ("-1x5", f"'-1x5' {NOT_A_SIZE}"),
        ("123456x1", f"'123456x1' {NOT_A_SIZE}"),
        ("128x128,big", f"'big' {NOT_A_SIZE}"),
        ("x" * 30, f"'{'x' * 20}' {NOT_A_SIZE}"),
        ("0x128", OUT_OF_RANGE),
        ("128x0", OUT_OF_RANGE),
        ("4097x1", OUT_OF_RANGE),
        ("", NO_SIZE),
        (" , ,", NO_SIZE),
    ],
    ids=[
        "a word",
        "one number",
        "no height",
        "spaces inside",
        "fraction",
        "negative",
        "six digits",
        "one bad among good",
        "long text cut to 20",
        "width 0",
        "height 0",
        "past the largest",
        "empty",
        "only commas",
    ],
)
def test_parse_boxes_refuses_with_a_reason(text, message):
    with pytest.raises(ValueError) as refused:
        naming.parse_boxes(text, largest=4096)

    assert str(refused.value) == message
