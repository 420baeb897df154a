"""Where the real tool outputs live: `../shared/samples` beside the repository (see its README)."""

from pathlib import Path

import pytest

SAMPLES_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "samples"


def sample_path(relative: str) -> Path:
    """The path of one sample file; skips the test with the reason when the samples folder is absent."""
    if not SAMPLES_DIR.is_dir():
        pytest.skip(f"the shared samples folder {SAMPLES_DIR.name!r} is not beside the repository")
    path = SAMPLES_DIR / relative
    assert path.is_file(), f"sample {relative} is missing from the samples folder"
    return path


def sample_bytes(relative: str) -> bytes:
    return sample_path(relative).read_bytes()


def sample_names(folder: str) -> list[str]:
    """All sample files in one folder, for parametrised tests (empty when the folder is absent)."""
    directory = SAMPLES_DIR / folder
    if not directory.is_dir():
        return []
    return sorted(f"{folder}/{p.name}" for p in directory.iterdir() if p.is_file())
