"""Potentials shipped with the package (package data), by name.

    AenetTorch("LiSi-demo")  or  AenetTorch.from_pretrained("LiSi-demo")

Each lives in `data/potentials/<name>/` with its `.nn` files and a model
card (MODEL_CARD.md: data, training, errors, limits).
"""

from __future__ import annotations

from pathlib import Path
from typing import List

from .errors import PotentialFileError

DATA = Path(__file__).resolve().parent / "data" / "potentials"


def pretrained_names() -> List[str]:
    """Names of the bundled potentials."""
    return sorted(p.name for p in DATA.iterdir() if p.is_dir()) if DATA.is_dir() else []


def is_pretrained_name(spec) -> bool:
    """True for a bundled potential's name that is not also an existing path."""
    return isinstance(spec, str) and spec in pretrained_names() and not Path(spec).exists()


def pretrained_path(name: str) -> Path:
    """Folder of a bundled potential (its `.nn` files and model card)."""
    if name not in pretrained_names():
        raise PotentialFileError(f"no bundled potential named {name!r}; available: {pretrained_names()}")
    return DATA / name
