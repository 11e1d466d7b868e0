"""The plain pyvips script `manage.py thumbnail` is measured against in bench.py's CLI row.

    python bench/vips_cli.py --out DIR FILE...

Does what the CLI does per file, the way a short script would: a 128x128 thumbnail (libvips
shrink-on-load), written as `<stem>_128x128.<ext>`, and `<stem>.zip` holding the original, the
thumbnail and a manifest.json with each member's size and sha256. No Django, no checks beyond
what libvips does itself.
"""

import hashlib
import json
import sys
import zipfile
from pathlib import Path

import pyvips

BOX = 128


def thumbnail_file(path: Path, out_dir: Path) -> None:
    original = path.read_bytes()
    thumbnail = pyvips.Image.thumbnail_buffer(original, BOX, height=BOX)
    extension = ".jpg" if path.suffix.lower() in (".jpg", ".jpeg") else ".png"
    thumbnail_data = thumbnail.write_to_buffer(extension + ("[Q=85,strip]" if extension == ".jpg" else ""))
    thumbnail_name = f"{path.stem}_{BOX}x{BOX}{extension}"
    (out_dir / thumbnail_name).write_bytes(thumbnail_data)

    members = {path.name: original, thumbnail_name: thumbnail_data}
    manifest = [
        {"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in members.items()
    ]
    with zipfile.ZipFile(out_dir / f"{path.stem}.zip", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr("manifest.json", json.dumps({"files": manifest}, indent=2))


def main(arguments: list[str]) -> None:
    if len(arguments) < 3 or arguments[0] != "--out":
        sys.exit("usage: vips_cli.py --out DIR FILE...")
    out_dir = Path(arguments[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in arguments[2:]:
        thumbnail_file(Path(name), out_dir)


if __name__ == "__main__":
    main(sys.argv[1:])
