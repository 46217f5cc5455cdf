"""Reading and writing the package's files (checkpoints, caches, records, notebooks) safely.

Every file is written atomically (:func:`write_atomic`: a temporary name in the same
folder, then a rename), so an interrupted write never leaves a file that looks
complete; tensor files are read with ``weights_only=True``. A file that cannot be read raises :class:`CorruptFileError`,
which names the file and says to delete it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

import torch


class CorruptFileError(RuntimeError):
    """A checkpoint or cache file exists but cannot be read."""


def write_atomic(path: Path, write: Callable[[Path], Any]) -> None:
    """Make ``path`` by ``write(temporary)`` and a rename: the file is whole or absent. The
    temporary is ``.<name>.<pid>.tmp`` beside it (a killed writer's is left under that pattern)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def save_atomic(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` to ``path`` atomically (:func:`write_atomic`)."""
    write_atomic(path, lambda tmp: torch.save(state, tmp))


def load_tensors(path: Path, what: str = "file") -> Any:
    """``torch.load(path, weights_only=True)`` with an error that names a corrupt file.

    ``what`` describes the file in the message ("checkpoint", "backbone cache", ...).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise CorruptFileError(
            f"{what} {path} is corrupt or truncated ({type(e).__name__}); delete it and run again "
            "(it is regenerated)") from None
