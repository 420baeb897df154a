"""Render page 1 of a demo release packet to docs/images/packet-page-1.png (the README's picture).

Run after `make run` has seeded the demo data (or against any database holding a release):
    CUSTODY_DEBUG=1 CUSTODY_VAR_DIR=var .venv/bin/python scripts/render_readme_picture.py [product] [version]
It reads only: the packet is rendered in memory and nothing is recorded. Needs poppler's `pdftoppm`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "docs" / "images" / "packet-page-1.png"


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from approvals.models import Release
    from reports.packets import render_packet_pdf

    releases = Release.objects.select_related("product").order_by("-frozen_at", "-pk")
    if len(argv) == 2:
        releases = releases.filter(product__key=argv[0], version=argv[1])
    release = releases.first()
    if release is None:
        print("no release found: seed the demo data first (make run)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as folder:
        pdf = Path(folder) / "packet.pdf"
        pdf.write_bytes(render_packet_pdf(release))
        stem = Path(folder) / "page"
        subprocess.run(
            ["pdftoppm", "-png", "-r", "70", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(stem)], check=True
        )
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        OUTPUT.write_bytes(stem.with_suffix(".png").read_bytes())
    print(f"{release} page 1 → {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
