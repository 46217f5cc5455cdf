"""Loaders for the real datasets the papers use, in their published layouts.

* **UCF101**: ``ucfTrainTestlist/{classInd,trainlist0K,testlist0K}.txt`` and videos
  ``<Class>/v_<Class>_gXX_cYY.avi`` (directly under the root or under ``UCF-101/``).
* **HMDB51**: ``testTrainMulti_7030_splits/<class>_test_split<K>.txt`` (``name.avi 1|2|0``
  for train / test / unused) and videos ``<class>/<name>.avi``.
* **Kinetics-400**: ``<split>.csv`` with ``label,youtube_id,time_start,time_end,split`` and
  videos ``<split>/<label>/<id>_<start:06d>_<end:06d>.mp4`` (or without the label folder).
* **Something-Something V2**: ``labels.json`` (name -> index), ``train.json`` /
  ``validation.json`` (``id``, ``template``), videos ``<id>.webm`` or frame folders ``<id>/``.
* **Jester**: ``jester-v1-labels.csv`` (one name per line), ``jester-v1-{train,validation}.csv``
  (``id;label``) and frame folders ``<id>/00001.jpg``.
* **Something-Something V1**: ``something-something-v1-labels.csv``,
  ``something-something-v1-{train,validation}.csv`` (``id;label``) and frame folders
  ``20bn-something-something-v1/<id>/00001.jpg``.
* **Kinetics-600**: the Kinetics-400 layout (``dataset="kinetics600"`` names it).
* **Charades** (multi-label): ``Charades_v1_classes.txt`` (``c000 name``),
  ``Charades_v1_{train,test}.csv`` whose ``actions`` column lists ``cNNN start end``
  separated by ``;``, and videos ``Charades_v1_480/<id>.mp4``. A video's target is every
  class it contains; metrics are mAP and wAP (:func:`average_precision`).
* **Generic lists** (the MMAction2 formats): ``video_list`` reads ``<split>.txt`` lines
  ``path label [label ...]``; ``frame_list`` reads ``folder total_frames label [label ...]``;
  paths are relative to the root, labels start at 0, names come from ``classes.txt`` when
  present. More than one label on any line makes the dataset multi-label.

Videos decode with PyAV; frame folders with Pillow. Sampling follows the papers:
TSN segments, dense clips with a stride, and multi-view testing (clips x 3 crops).
Every failure names the file: a missing path, an undecodable or truncated video (fewer
frames decode than the container declares), an unknown class. :func:`open_dataset` is
the one entry point the chapters use: it returns the training and test sets of a layout
with the paper's sampling and a stated policy for bad videos (``on_bad_video``).
"""
from __future__ import annotations

import csv
import json
import re
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import av
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from vidattn.core.identity import declare

declare("data/real", 1)  # decoding, sampling and views of the real-data loaders (their probe's checksum)
VIDEO_EXTENSIONS = (".avi", ".mp4", ".webm", ".mkv")


class DatasetError(ValueError):
    """A dataset file is missing, malformed or refers to something unknown."""


@dataclass(frozen=True)
class VideoItem:
    path: Path  # a video file or a folder of frames
    label: int | tuple[int, ...]  # a tuple for multi-label datasets (possibly empty)


def _need(path: Path, what: str) -> Path:
    if not path.exists():
        raise DatasetError(f"{what} not found: {path}")
    return path


# set by listed_videos(): collect the missing videos an annotation file names instead of raising
_COLLECT_MISSING: ContextVar[list[Path] | None] = ContextVar("collect_missing", default=None)


def _listed(path: Path, what: str) -> Path:
    """A video or frame folder named by an annotation file (an error if missing, unless collected)."""
    missing = _COLLECT_MISSING.get()
    if missing is not None:
        if not path.exists():
            missing.append(path)
        return path
    return _need(path, what)


def decode_counted(path: Path) -> tuple[np.ndarray, int | None]:
    """All decodable frames of a video file (T, H, W, 3) uint8 and the frame count its
    container declares (None when it does not say), or the frames of a folder of images.

    Raises :class:`DatasetError` naming the file when nothing decodes.
    """
    path = Path(path)
    _need(path, "video")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        if not files:
            raise DatasetError(f"frame folder {path} holds no .jpg/.png frames")
        try:
            frames = [np.asarray(Image.open(f).convert("RGB")) for f in files]
        except (OSError, UnidentifiedImageError) as e:
            raise DatasetError(f"cannot decode a frame in {path}: {e}") from e
        return np.stack(frames), None
    frames = []
    try:
        with av.open(str(path)) as container:
            declared = container.streams.video[0].frames or None
            for f in container.decode(video=0):
                frames.append(f.to_ndarray(format="rgb24"))
    except (av.error.FFmpegError, IndexError, ValueError) as e:
        if not frames:
            raise DatasetError(f"cannot decode video {path}: {e}") from e
        declared = max(declared or 0, len(frames) + 1)  # decoding stopped part-way: truncated
    if not frames:
        raise DatasetError(f"video {path} has no decodable frames")
    return np.stack(frames), declared


def decode_video(path: Path) -> np.ndarray:
    """All frames of a video file (T, H, W, 3) uint8, or of a folder of images.

    A video whose frames decode only in part (fewer than its container declares) is
    truncated: an error naming the file and both counts, never a short clip.
    """
    frames, declared = decode_counted(path)
    if declared is not None and len(frames) < declared:
        raise DatasetError(f"video {path} is truncated: decoded {len(frames)} of {declared} frames")
    return frames


def encode_video(path: Path, video: np.ndarray, fps: int = 12) -> None:
    """Write a (T, H, W, 3) uint8 clip: H.264 in .mp4/.mkv, VP8 in .webm, MPEG-4 in .avi."""
    path = Path(path)
    codec = {".mp4": "libx264", ".mkv": "libx264", ".webm": "libvpx", ".avi": "mpeg4"}.get(path.suffix)
    if codec is None:
        raise DatasetError(f"cannot choose a codec for {path} (use one of {VIDEO_EXTENSIONS})")
    path.parent.mkdir(parents=True, exist_ok=True)
    T, H, W, _ = video.shape
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = W + W % 2, H + H % 2
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "10", "preset": "ultrafast"}
        elif codec == "mpeg4":
            stream.bit_rate = 4_000_000
        for frame in video:
            if W % 2 or H % 2:
                frame = np.pad(frame, ((0, H % 2), (0, W % 2), (0, 0)), mode="edge")
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        out.mux(stream.encode())


# ------------------------------------------------------------------ sampling


def tsn_indices(num_frames: int, segments: int, train: bool, rng: np.random.Generator | None = None) -> np.ndarray:
    """TSN: split the video into ``segments`` equal parts and take one frame from each
    (a random frame in training, the middle frame at test)."""
    edges = np.linspace(0, num_frames, segments + 1)
    if train:
        rng = rng or np.random.default_rng()
        idx = edges[:-1] + rng.random(segments) * (edges[1:] - edges[:-1])
    else:
        idx = (edges[:-1] + edges[1:]) / 2
    return np.minimum(idx.astype(np.int64), num_frames - 1)


def dense_indices(num_frames: int, clip_len: int, stride: int, start: int) -> np.ndarray:
    """``clip_len`` frames every ``stride`` frames from ``start``; short videos loop."""
    return (start + stride * np.arange(clip_len)) % num_frames


def clip_starts(num_frames: int, clip_len: int, stride: int, n_clips: int, train: bool,
                rng: np.random.Generator | None = None) -> list[int]:
    """Start frames: one random start in training, ``n_clips`` uniform starts at test."""
    span = max(0, num_frames - (clip_len - 1) * stride - 1)
    if train:
        return [int((rng or np.random.default_rng()).integers(0, span + 1))]
    if n_clips == 1:
        return [span // 2]
    return [int(round(s)) for s in np.linspace(0, span, n_clips)]


def resize_short_side(video: torch.Tensor, size: int) -> torch.Tensor:
    """(C, T, H, W) float -> shorter spatial side ``size`` (bilinear)."""
    C, T, H, W = video.shape
    scale = size / min(H, W)
    out = F.interpolate(video.permute(1, 0, 2, 3), size=(max(size, round(H * scale)), max(size, round(W * scale))),
                        mode="bilinear", align_corners=False, antialias=True)
    return out.permute(1, 0, 2, 3)


def three_crops(video: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Left/centre/right (or top/centre/bottom) ``size`` crops along the longer side."""
    H, W = video.shape[-2:]
    if W >= H:
        offs = [0, (W - size) // 2, W - size]
        return [video[..., (H - size) // 2 : (H - size) // 2 + size, o : o + size] for o in offs]
    offs = [0, (H - size) // 2, H - size]
    return [video[..., o : o + size, (W - size) // 2 : (W - size) // 2 + size] for o in offs]


@dataclass(frozen=True)
class Sampling:
    """How clips are drawn. ``mode`` is ``tsn`` (``frames`` segments) or ``dense``
    (``frames`` frames every ``stride``). At test, ``clips`` x (3 if ``three_crop``)
    views are returned as a (V, C, T, H, W) tensor."""

    mode: str = "tsn"
    frames: int = 8
    stride: int = 2
    size: int = 112
    clips: int = 1
    three_crop: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("tsn", "dense"):
            raise ValueError(f"unknown sampling mode {self.mode!r}; known: tsn, dense")


BAD_VIDEO_POLICIES = ("error", "skip")


class VideoDataset(Dataset):
    """Decoded, sampled, resized clips of a list of :class:`VideoItem`.

    Items have the same keys as the synthetic :class:`~vidattn.data.suites.ClipDataset`
    (``video`` in [-0.5, 0.5], ``label``, ``index``), so the engine treats both alike;
    a multi-label dataset gives ``label`` as a multi-hot float vector of ``len(classes)``.
    Training takes a random clip and a random ``size`` crop; test takes the views.
    ``seed`` fixes the test views and, with torch's RNG, the training draws.

    ``on_bad_video`` says what a missing, corrupt or truncated video does: ``error``
    raises naming the file; ``skip`` records it in :attr:`bad` and serves, in training,
    the next sound video of the list in its place, and at test a blank clip whose index
    is in :attr:`bad` (the evaluation drops it from every score).
    """

    def __init__(self, items: Sequence[VideoItem], classes: Sequence[str], sampling: Sampling, train: bool,
                 seed: int = 0, multi_label: bool = False, on_bad_video: str = "error"):
        if on_bad_video not in BAD_VIDEO_POLICIES:
            raise ValueError(f"unknown on_bad_video {on_bad_video!r}; known: {BAD_VIDEO_POLICIES}")
        self.items, self.classes, self.sampling = list(items), list(classes), sampling
        self.train, self.seed, self.multi_label, self.on_bad_video = train, seed, multi_label, on_bad_video
        self.bad: dict[int, str] = {}  # index -> why, for videos skipped under on_bad_video="skip"

    def __len__(self) -> int:
        return len(self.items)

    def _indices(self, n: int, rng: np.random.Generator) -> list[np.ndarray]:
        s = self.sampling
        if s.mode == "tsn":
            if self.train or s.clips == 1:
                return [tsn_indices(n, s.frames, self.train, rng)]
            # test-time TSN views: shift the in-segment position
            edges = np.linspace(0, n, s.frames + 1)
            return [np.minimum((edges[:-1] + (k + 0.5) / s.clips * (edges[1:] - edges[:-1])).astype(np.int64), n - 1)
                    for k in range(s.clips)]
        return [dense_indices(n, s.frames, s.stride, st)
                for st in clip_starts(n, s.frames, s.stride, s.clips, self.train, rng)]

    def target(self, i: int) -> torch.Tensor:
        """The label of item ``i``: a class index, or a multi-hot vector when multi-label."""
        label = self.items[i].label
        if not self.multi_label:
            return torch.tensor(label)
        hot = torch.zeros(len(self.classes))
        hot[list(label)] = 1.0
        return hot

    def _decode(self, i: int) -> np.ndarray | None:
        try:
            return decode_video(self.items[i].path)
        except DatasetError as e:
            if self.on_bad_video == "error":
                raise DatasetError(f"{e} (on_bad_video='error'; pass on_bad_video='skip' to train without "
                                   "it, counted in the record, or repair the file: vidattn data check "
                                   "lists every bad video)") from None
            self.bad[i] = str(e)
            return None

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        frames = self._decode(i)
        if frames is None and self.train:  # skip: the next sound video of the list takes its place
            for step in range(1, len(self.items)):
                j = (i + step) % len(self.items)
                if j not in self.bad and (frames := self._decode(j)) is not None:
                    i = j
                    break
            else:
                raise DatasetError("on_bad_video='skip': no video of the list decodes")
        s = self.sampling
        if frames is None:  # a skipped test video: a blank clip the evaluation drops
            views = 1 if s.clips == 1 and not s.three_crop else s.clips * (3 if s.three_crop else 1)
            blank = torch.zeros(3, s.frames, s.size, s.size)
            video = blank if views == 1 else blank.expand(views, -1, -1, -1, -1).clone()
            return {"video": video, "label": self.target(i), "index": torch.tensor(i)}
        # training draws from torch's RNG (seeded, and saved in checkpoints, by the engine), so
        # every epoch sees new clips and crops; test views are a fixed function of the index
        draw = int(torch.randint(0, 2**31 - 1, (1,))) if self.train else 0
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, draw, i]))
        views = []
        for idx in self._indices(len(frames), rng):
            clip = torch.from_numpy(frames[idx]).permute(3, 0, 1, 2).float().div_(255.0)
            clip = resize_short_side(clip, s.size)
            if self.train:
                H, W = clip.shape[-2:]
                y, x = int(rng.integers(0, H - s.size + 1)), int(rng.integers(0, W - s.size + 1))
                views.append(clip[..., y : y + s.size, x : x + s.size])
            elif s.three_crop:
                views.extend(three_crops(clip, s.size))
            else:
                views.extend(three_crops(clip, s.size)[1:2])
        video = views[0] if self.train or len(views) == 1 else torch.stack(views)
        return {"video": video.sub_(0.5), "label": self.target(i), "index": torch.tensor(i)}


# ------------------------------------------------------------------ layouts


def _class_index(name: str, classes: Sequence[str], where: str) -> int:
    try:
        return classes.index(name)
    except ValueError:
        raise DatasetError(f"unknown class {name!r} in {where}") from None


def _lines(path: Path) -> list[str]:
    return [ln.strip() for ln in _need(path, "split file").read_text().splitlines() if ln.strip()]


def ucf101(root: Path, split: int = 1, train: bool = True) -> tuple[list[VideoItem], list[str]]:
    root = Path(root)
    lists = _need(root / "ucfTrainTestlist", "UCF101 split folder")
    classes = [ln.split()[1] for ln in _lines(lists / "classInd.txt")]
    vids = root / "UCF-101" if (root / "UCF-101").is_dir() else root
    split_file = lists / f"{'trainlist' if train else 'testlist'}{split:02d}.txt"
    items = []
    for n, ln in enumerate(_lines(split_file), 1):
        rel = ln.split()[0]
        cls = rel.split("/")[0]
        label = _class_index(cls, classes, f"{split_file} line {n}")
        items.append(VideoItem(_listed(vids / rel, f"video listed in {split_file} line {n}"), label))
    return items, classes


def hmdb51(root: Path, split: int = 1, train: bool = True) -> tuple[list[VideoItem], list[str]]:
    root = Path(root)
    splits = _need(root / "testTrainMulti_7030_splits", "HMDB51 split folder")
    files = sorted(splits.glob(f"*_test_split{split}.txt"))
    if not files:
        raise DatasetError(f"no *_test_split{split}.txt files in {splits}")
    classes = [f.name[: -len(f"_test_split{split}.txt")] for f in files]
    want = "1" if train else "2"
    items = []
    for label, f in enumerate(files):
        for n, ln in enumerate(_lines(f), 1):
            parts = ln.split()
            if len(parts) != 2 or parts[1] not in "012":
                raise DatasetError(f"malformed line {n} in {f}: {ln!r}")
            if parts[1] == want:
                items.append(VideoItem(_listed(root / classes[label] / parts[0], f"video listed in {f} line {n}"),
                                           label))
    return items, classes


def kinetics400(root: Path, split: str = "train", classes: Sequence[str] | None = None
                ) -> tuple[list[VideoItem], list[str]]:
    """``classes`` defaults to the sorted labels of ``train.csv`` (the usual 400-class order)."""
    root = Path(root)
    csv_path = _need(root / f"{split}.csv", "Kinetics annotation CSV")
    if classes is None:
        with open(_need(root / "train.csv", "Kinetics train.csv (defines the classes)")) as fh:
            classes = sorted({row["label"] for row in csv.DictReader(fh)})
    classes = list(classes)
    items = []
    with open(csv_path) as fh:
        for n, row in enumerate(csv.DictReader(fh), 2):
            try:
                name = f"{row['youtube_id']}_{int(float(row['time_start'])):06d}_{int(float(row['time_end'])):06d}.mp4"
                label = _class_index(row["label"], classes, f"{csv_path} line {n}")
            except KeyError as e:
                raise DatasetError(f"{csv_path} lacks column {e}") from None
            cands = (root / split / row["label"] / name, root / split / name)
            found = next((c for c in cands if c.exists()), None)
            items.append(VideoItem(found or _listed(cands[0], f"video for {csv_path} line {n}"), label))
    return items, classes


def ssv2(root: Path, split: str = "train") -> tuple[list[VideoItem], list[str]]:
    root = Path(root)
    labels = json.loads(_need(root / "labels.json", "SSv2 labels.json").read_text())
    classes = [name for name, _ in sorted(labels.items(), key=lambda kv: int(kv[1]))]
    ann_path = _need(root / f"{split}.json", "SSv2 annotation file")
    items = []
    for n, entry in enumerate(json.loads(ann_path.read_text())):
        name = entry["template"].replace("[", "").replace("]", "")
        label = _class_index(name, classes, f"{ann_path} entry {n}")
        cands = (root / "videos" / f"{entry['id']}.webm", root / "frames" / entry["id"])
        found = next((c for c in cands if c.exists()), None)
        items.append(VideoItem(found or _listed(cands[0], f"video of {ann_path} entry {n}"), label))
    return items, classes


def _semicolon_frames(root: Path, labels_file: str, ann_file: str, frames: str
                      ) -> tuple[list[VideoItem], list[str]]:
    """The 20BN layout of Jester and Something-Something V1: class names one per line,
    annotations ``id;class name``, frame folders ``<frames>/<id>/00001.jpg``."""
    classes = _lines(root / labels_file)
    ann = root / ann_file
    items = []
    for n, ln in enumerate(_lines(ann), 1):
        parts = ln.split(";")
        if len(parts) != 2:
            raise DatasetError(f"malformed line {n} in {ann}: {ln!r}")
        label = _class_index(parts[1], classes, f"{ann} line {n}")
        items.append(VideoItem(_listed(root / frames / parts[0], f"frame folder listed in {ann} line {n}"),
                               label))
    return items, classes


def jester(root: Path, split: str = "train") -> tuple[list[VideoItem], list[str]]:
    return _semicolon_frames(Path(root), "jester-v1-labels.csv", f"jester-v1-{split}.csv", "frames")


def ssv1(root: Path, split: str = "train") -> tuple[list[VideoItem], list[str]]:
    return _semicolon_frames(Path(root), "something-something-v1-labels.csv",
                             f"something-something-v1-{split}.csv", "20bn-something-something-v1")


def charades(root: Path, split: str = "train") -> tuple[list[VideoItem], list[str]]:
    """Multi-label: each video's label is the tuple of classes its ``actions`` column names."""
    root = Path(root)
    lines = _lines(root / "Charades_v1_classes.txt")
    ids = [ln.split()[0] for ln in lines]
    names = [ln.split(maxsplit=1)[1] if " " in ln else ln for ln in lines]
    csv_path = _need(root / f"Charades_v1_{split}.csv", "Charades annotation CSV")
    vids = next((root / d for d in ("Charades_v1_480", "Charades_v1") if (root / d).is_dir()),
                root / "Charades_v1_480")
    items = []
    with open(csv_path, newline="") as fh:
        for n, row in enumerate(csv.DictReader(fh), 2):
            try:
                acts = [a.split()[0] for a in row["actions"].split(";") if a.strip()]
                video_id = row["id"]
            except KeyError as e:
                raise DatasetError(f"{csv_path} lacks column {e}") from None
            labels = tuple(sorted({_class_index(a, ids, f"{csv_path} line {n}") for a in acts}))
            items.append(VideoItem(_listed(vids / f"{video_id}.mp4", f"video for {csv_path} line {n}"), labels))
    return items, names


def _list_file(root: Path, split: str, frames: bool) -> tuple[list[VideoItem], list[str]]:
    """MMAction2's list files: ``path label...`` (videos) or ``folder total_frames label...``."""
    ann = _need(root / f"{split}.txt", "list file")
    skip = 2 if frames else 1
    rows = []
    for n, ln in enumerate(_lines(ann), 1):
        parts = ln.split()
        if len(parts) <= skip or not all(p.isdigit() for p in parts[1:]):
            want = "folder total_frames label [label ...]" if frames else "path label [label ...]"
            raise DatasetError(f"malformed line {n} in {ann}: {ln!r} (expected {want})")
        rows.append((n, parts[0], tuple(int(p) for p in parts[skip:])))
    multi = any(len(labels) > 1 for *_, labels in rows)
    names_file = root / "classes.txt"
    if names_file.is_file():
        classes = _lines(names_file)
    else:  # names from the largest label of both splits, so train and test agree
        top = 0
        for other in sorted(root.glob("*.txt")):
            if other.name == "classes.txt":
                continue
            for ln in _lines(other):
                parts = ln.split()
                if len(parts) > skip and all(p.isdigit() for p in parts[1:]):
                    top = max(top, *(int(p) for p in parts[skip:]))
        classes = [f"class_{k}" for k in range(top + 1)]
    items = []
    for n, rel, labels in rows:
        if max(labels) >= len(classes):
            raise DatasetError(f"label {max(labels)} in {ann} line {n} is out of range ({len(classes)} classes)")
        items.append(VideoItem(_listed(root / rel, f"{'folder' if frames else 'video'} listed in {ann} line {n}"),
                               labels if multi else labels[0]))
    return items, classes


def video_list(root: Path, split: str = "train") -> tuple[list[VideoItem], list[str]]:
    return _list_file(Path(root), split, frames=False)


def frame_list(root: Path, split: str = "train") -> tuple[list[VideoItem], list[str]]:
    return _list_file(Path(root), split, frames=True)


LAYOUTS = {"ucf101": ucf101, "hmdb51": hmdb51, "kinetics400": kinetics400, "kinetics600": kinetics400,
           "ssv2": ssv2, "ssv1": ssv1, "jester": jester, "charades": charades, "video_list": video_list,
           "frame_list": frame_list}
MULTI_LABEL = ("charades",)  # the list layouts are multi-label when a line carries several labels
_K = [((s,), f"{s}.csv") for s in ("train", "val", "validate", "test")]
_TRAIN_VAL = ("train", "validation")
# the annotated splits of each layout, as (loader arguments, a glob of the file(s) they read)
_SPLITS = {
    "ucf101": [((k, tr), f"ucfTrainTestlist/{'trainlist' if tr else 'testlist'}{k:02d}.txt")
               for k in (1, 2, 3) for tr in (True, False)],
    "hmdb51": [((k, tr), f"testTrainMulti_7030_splits/*_test_split{k}.txt") for k in (1, 2, 3)
               for tr in (True, False)],
    "kinetics400": _K,
    "kinetics600": _K,
    "ssv2": [((s,), f"{s}.json") for s in _TRAIN_VAL],
    "ssv1": [((s,), f"something-something-v1-{s}.csv") for s in _TRAIN_VAL],
    "jester": [((s,), f"jester-v1-{s}.csv") for s in _TRAIN_VAL],
    "charades": [((s,), f"Charades_v1_{s}.csv") for s in ("train", "test")],
    "video_list": [((s,), f"{s}.txt") for s in ("train", "val", "test")],
    "frame_list": [((s,), f"{s}.txt") for s in ("train", "val", "test")],
}
# (training split, test split) of each layout; ucf101 and hmdb51 take a fold number instead
DEFAULT_SPLITS = {"kinetics400": ("train", "val"), "kinetics600": ("train", "val"), "ssv2": _TRAIN_VAL,
                  "ssv1": _TRAIN_VAL, "jester": _TRAIN_VAL, "charades": ("train", "test"),
                  "video_list": ("train", "val"), "frame_list": ("train", "val")}


def listed_videos(root: Path, dataset: str = "") -> tuple[str, list[Path], list[Path]]:
    """The layout at ``root`` (``dataset``, else detected), every video its annotation files
    list that exists, and those missing."""
    root = Path(root)
    layout = dataset or detect_layout(root)
    if layout not in LAYOUTS:
        raise DatasetError(f"unknown dataset {layout!r}; known: {sorted(LAYOUTS)}")
    present: dict[Path, None] = {}
    missing: list[Path] = []
    token = _COLLECT_MISSING.set(missing)
    try:
        for args, mark in _SPLITS[layout]:
            if not any(root.glob(mark)):
                continue
            items, _ = LAYOUTS[layout](root, *args)
            present.update((i.path, None) for i in items if i.path.exists())
    finally:
        _COLLECT_MISSING.reset(token)
    return layout, list(present), sorted(set(missing))


def detect_layout(root: Path) -> str:
    """Name of the layout found at ``root`` (a clear error if none matches).

    Kinetics-600 shares Kinetics-400's layout and the two list layouts share their file
    names: pass ``dataset`` to :func:`open_dataset` to choose among them.
    """
    root = Path(root)
    _need(root, "dataset root")
    marks = {"ucf101": "ucfTrainTestlist", "hmdb51": "testTrainMulti_7030_splits", "kinetics400": "train.csv",
             "ssv2": "labels.json", "jester": "jester-v1-labels.csv", "ssv1": "something-something-v1-labels.csv",
             "charades": "Charades_v1_classes.txt", "video_list": "train.txt"}
    for name, mark in marks.items():
        if (root / mark).exists():
            if name == "video_list":  # a list of frame folders, or of video files?
                first = _lines(root / mark)[:1]
                if first and (root / first[0].split()[0]).is_dir():
                    return "frame_list"
            return name
    raise DatasetError(f"{root} matches no known layout (looked for {sorted(marks.values())}); "
                       f"known datasets: {sorted(LAYOUTS)}")


@dataclass
class RealData:
    """A real dataset opened for a chapter: training set, test set (the paper's views) and
    a single-view test set (the centre clip and crop, for analyses that read one view)."""

    dataset: str
    root: Path
    train: VideoDataset
    test: VideoDataset
    probe: VideoDataset
    classes: list[str]
    multi_label: bool
    splits: tuple[str, str]

    def describe(self, where: bool = True) -> str:
        """The dataset in one line: its layout, its root (unless not ``where``), splits and classes."""
        return (f"{self.dataset}{f' at {self.root}' if where else ''} (train {self.splits[0]}: {len(self.train)} videos, "
                f"test {self.splits[1]}: {len(self.test)} videos, {len(self.classes)} classes"
                f"{', multi-label' if self.multi_label else ''})")


def _split_args(dataset: str, split: str | int | None) -> tuple[tuple, tuple, tuple[str, str]]:
    if dataset in ("ucf101", "hmdb51"):
        fold = 1 if split in (None, "") else int(split)
        if fold not in (1, 2, 3):
            raise DatasetError(f"{dataset} has folds 1, 2 and 3; split={split!r}")
        return (fold, True), (fold, False), (f"fold {fold} train", f"fold {fold} test")
    train, test = DEFAULT_SPLITS[dataset]
    test = str(split) if split not in (None, "") else test
    return (train,), (test,), (train, test)


def open_dataset(root: Path, dataset: str = "", split: str | int | None = None, *,
                 train_sampling: Sampling, test_sampling: Sampling, on_bad_video: str = "error",
                 seed: int = 0) -> RealData:
    """The training and test sets of the dataset at ``root``.

    ``dataset`` names the layout (detected from the files when empty); ``split`` is the
    fold of UCF101/HMDB51 (1-3) or the name of the test split of the other layouts
    (default: their validation split). Training uses ``train_sampling``; the test set
    uses ``test_sampling`` (its multi-view testing) and the probe one centre view.
    """
    root = Path(root)
    dataset = dataset or detect_layout(root)
    if dataset not in LAYOUTS:
        raise DatasetError(f"unknown dataset {dataset!r}; known: {sorted(LAYOUTS)}")
    train_args, test_args, names = _split_args(dataset, split)
    train_items, classes = LAYOUTS[dataset](root, *train_args)
    test_items, test_classes = LAYOUTS[dataset](root, *test_args)
    if test_classes != classes:
        raise DatasetError(f"{root}: the {names[1]} split names other classes than {names[0]}")
    if not train_items or not test_items:
        raise DatasetError(f"{root}: the {names[0] if not train_items else names[1]} split lists no video")
    multi = dataset in MULTI_LABEL or any(isinstance(i.label, tuple) for i in train_items + test_items)
    probe = Sampling(test_sampling.mode, test_sampling.frames, test_sampling.stride, test_sampling.size)

    def make(items: list[VideoItem], sampling: Sampling, train: bool) -> VideoDataset:
        return VideoDataset(items, classes, sampling, train, seed, multi, on_bad_video)

    return RealData(dataset, root, make(train_items, train_sampling, True), make(test_items, test_sampling, False),
                    make(test_items, probe, False), classes, multi, names)


def annotation_fingerprint(root: Path, dataset: str = "") -> str:
    """sha256 of a dataset's annotation files (names and bytes): part of every real-data run's key,
    so a changed split or label file never serves an old record. The videos themselves are
    not hashed (terabytes); ``vidattn data check`` vouches for them."""
    from vidattn.core.fingerprint import sha256

    root = Path(root)
    dataset = dataset or detect_layout(root)
    if dataset not in LAYOUTS:
        raise DatasetError(f"unknown dataset {dataset!r}; known: {sorted(LAYOUTS)}")
    files = sorted({f for _, mark in _SPLITS[dataset] for f in root.glob(mark)}
                   | {root / n for n in ("classes.txt", "labels.json", "Charades_v1_classes.txt",
                                         "something-something-v1-labels.csv", "jester-v1-labels.csv",
                                         "ucfTrainTestlist/classInd.txt") if (root / n).is_file()})
    return sha256(b"".join(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() for f in files))


def export_ucf101(videos: np.ndarray, labels: np.ndarray, class_names: Sequence[str], root: Path,
                  train: np.ndarray) -> None:
    """Write clips in the UCF101 layout (MPEG-4 .avi, split 1) so the real loader reads them."""
    root = Path(root)
    names = ["".join(part.title() for part in re.split(r"[^A-Za-z0-9]+", c)) for c in class_names]
    if len(set(names)) != len(names):
        raise DatasetError(f"class names {list(class_names)} do not map to distinct UCF101 folder names")
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "classInd.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(names)))
    tr, te = [], []
    for i, (video, y) in enumerate(zip(videos, labels)):
        rel = f"{names[y]}/v_{names[y]}_g{i // 100 + 1:02d}_c{i % 100 + 1:02d}.avi"
        encode_video(root / "UCF-101" / rel, video)
        (tr if train[i] else te).append(rel)
    (lists / "trainlist01.txt").write_text("".join(f"{r} {names.index(r.split('/')[0]) + 1}\n" for r in tr))
    (lists / "testlist01.txt").write_text("".join(f"{r}\n" for r in te))
