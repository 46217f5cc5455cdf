"""Checking a dataset before training on it: every listed video present, decodable and whole.

:func:`check_dataset` lists the videos that a layout's annotation files name
(:func:`vidattn.data.real.listed_videos`) and decodes each in a pool of processes. A
video is *missing* (listed, not on disk), *corrupt* (the container or a frame cannot be
decoded, or no frame decodes), *truncated* (fewer frames decode than the container
declares) or *ok*. Frame folders are checked image by image.
"""
from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from vidattn.data.real import DatasetError, decode_counted, listed_videos

STATUSES = ("ok", "missing", "corrupt", "truncated")


@dataclass(frozen=True)
class VideoCheck:
    path: Path
    status: str  # one of STATUSES
    frames: int  # frames decoded
    expected: int | None  # frames the container declares (None when it does not say)
    detail: str = ""


def check_video(path: Path) -> VideoCheck:
    """Decode every frame of one video file or frame folder and compare with its declared count
    (the loaders' own rule, :func:`vidattn.data.real.decode_counted`)."""
    path = Path(path)
    if not path.exists():
        return VideoCheck(path, "missing", 0, None, "not found")
    try:
        frames, declared = decode_counted(path)
    except DatasetError as e:
        return VideoCheck(path, "corrupt", 0, None, str(e))
    if declared is not None and len(frames) < declared:
        return VideoCheck(path, "truncated", len(frames), declared, f"decoded {len(frames)} of {declared} frames")
    return VideoCheck(path, "ok", len(frames), declared)


def check_dataset(root: Path, workers: int = 2, progress: bool = True, dataset: str = ""
                  ) -> tuple[str, list[VideoCheck]]:
    """The layout at ``root`` (``dataset``, else detected) and one check per listed video
    (missing ones first)."""
    layout, present, missing = listed_videos(root, dataset)
    checks = [VideoCheck(p, "missing", 0, None, "listed but not found") for p in missing]
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        decoded = pool.map(check_video, present, chunksize=8)
        checks += list(tqdm(decoded, total=len(present), desc=f"decoding {layout}", disable=not progress))
    return layout, checks
