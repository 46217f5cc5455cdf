"""Where the package keeps generated data, run records and checkpoints."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """``$VIDATTN_DATA_DIR`` if set, else the repository's ``data/`` folder."""
    env = os.environ.get("VIDATTN_DATA_DIR")
    return Path(env) if env else REPO_ROOT / "data"


def records_dir() -> Path:
    """Committed run records (the result store); ``$VIDATTN_RECORDS_DIR`` overrides."""
    env = os.environ.get("VIDATTN_RECORDS_DIR")
    return Path(env) if env else data_dir() / "records"
