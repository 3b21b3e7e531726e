"""Shared test helpers: where the real published configs are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The repo keeps a copy of every real config the tests use (small public files, provenance in
# the folder's README), so a fresh clone runs the whole suite. A ``shared/`` folder beside the
# checkout, when present, may add more.
SHARED_REAL_CONFIGS = REPO.parent / "shared" / "real-configs"
OWN_REAL_CONFIGS = REPO / "tests" / "fixtures" / "real-configs"


def real_config_files() -> list[str]:
    """File names of every real config: the repo's own copies and any extra shared ones."""
    folders = [f for f in (OWN_REAL_CONFIGS, SHARED_REAL_CONFIGS) if f.is_dir()]
    return sorted({path.name for folder in folders for path in folder.glob("*.json")})


def real_config_names(model_type: str) -> list[str]:
    """Names of the real configs of ``model_type``, from the shared folder or our own copies."""
    folders = [f for f in (OWN_REAL_CONFIGS, SHARED_REAL_CONFIGS) if f.is_dir()]
    names = set()
    for folder in folders:
        for path in folder.glob("*.json"):
            if json.loads(path.read_text()).get("model_type") == model_type:
                names.add(path.name)
    return sorted(names)


def load_real_config(name: str) -> dict:
    """A real config from the shared folder or our own copies; a skip saying why if neither
    has it."""
    for folder in (OWN_REAL_CONFIGS, SHARED_REAL_CONFIGS):
        if (folder / name).is_file():
            return json.loads((folder / name).read_text())
    pytest.skip(f"{name}: not in {SHARED_REAL_CONFIGS} (absent) nor in {OWN_REAL_CONFIGS}")
