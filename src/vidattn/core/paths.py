"""Where the package keeps generated data, run records and checkpoints."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]


def _from_env(name: str) -> Path | None:
    """``$name`` as a path; a relative one is taken from the repository root, not from the
    working folder (a chapter's kernel runs in ``notebooks/``, its caller elsewhere)."""
    env = os.environ.get(name)
    return None if not env else Path(env) if Path(env).is_absolute() else REPO_ROOT / env


def data_dir() -> Path:
    """``$VIDATTN_DATA_DIR`` if set, else the repository's ``data/`` folder."""
    return _from_env("VIDATTN_DATA_DIR") or REPO_ROOT / "data"


def records_dir() -> Path:
    """Committed run records (the result store); ``$VIDATTN_RECORDS_DIR`` overrides."""
    return _from_env("VIDATTN_RECORDS_DIR") or data_dir() / "records"
