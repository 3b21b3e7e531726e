"""Shared test helpers: where the real published configs are."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# CI lays ``shared/`` beside the checkout; the repo keeps a few of its own copies too.
SHARED_REAL_CONFIGS = REPO.parent / "shared" / "real-configs"
OWN_REAL_CONFIGS = REPO / "tests" / "fixtures" / "real-configs"


def shared_real_configs() -> Path:
    """The shared folder of real configs, or a skip that says why it is missing."""
    if not SHARED_REAL_CONFIGS.is_dir():
        pytest.skip(
            f"no shared real configs at {SHARED_REAL_CONFIGS} (shared/ is not beside the repo)"
        )
    return SHARED_REAL_CONFIGS


def real_config_names(model_type: str) -> list[str]:
    """Names of the real configs of ``model_type``, from the shared folder or our own copies."""
    folders = [f for f in (SHARED_REAL_CONFIGS, OWN_REAL_CONFIGS) if f.is_dir()]
    names = set()
    for folder in folders:
        for path in folder.glob("*.json"):
            if json.loads(path.read_text()).get("model_type") == model_type:
                names.add(path.name)
    return sorted(names)


def load_real_config(name: str) -> dict:
    """A real config from the shared folder or our own copies; a skip saying why if neither
    has it."""
    for folder in (SHARED_REAL_CONFIGS, OWN_REAL_CONFIGS):
        if (folder / name).is_file():
            return json.loads((folder / name).read_text())
    pytest.skip(f"{name}: not in {SHARED_REAL_CONFIGS} (absent) nor in {OWN_REAL_CONFIGS}")
