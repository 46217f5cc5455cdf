"""Behaviour probes: what guards an experiment's declared version (:mod:`vidattn.core.identity`).

A record is keyed by its experiment's *version*, not by its code, so the code is free
to change as long as it computes the same thing. The probe of each registered
experiment checks that it does: a tiny config (:data:`PROBE_CONFIGS`) that runs the
experiment's real code path end to end (suite generation, model, a few optimiser
steps, evaluation) in a few seconds, in an empty data folder (no cache is read); the
real-data experiments run on a tiny UCF101-layout fixture made from a synthetic suite
(:func:`~vidattn.data.fixtures.ucf101_fixture`). Its
outputs are committed with the versions it ran at, in ``tests/probes/<name>.json``:

* ``suites``: sha256 of every suite split it generated (videos, masks, labels);
* ``values``: every number of its metrics, curves (losses per epoch) and per-clip
  outcomes, speed measurements excepted; each example array (attention maps, warped
  frames, kernels: values rounded for the page) as its count, mean and mean magnitude.

:func:`check` compares a fresh run with the committed one: checksums exactly, numbers
to :data:`RTOL` / :data:`ATOL` (examples' summaries to :data:`EXAMPLES_RTOL`, and the
few ill-conditioned metrics of :data:`LOOSE` to theirs), tolerances that hold across CPU
instruction sets (``tests/test_probes.py`` runs the probes natively and under
``ATEN_CPU_CAPABILITY=default``) and are far below what a change of schedule, suite or
initialisation moves (the same file shows that). A mismatch says what to do: bump the version of the experiment
(or of the versioned computation it uses that changed; its records become stale and
``make retrain`` regenerates them) and refresh the probe with ``vidattn probe --update``,
or revert the change. A version bumped without a refreshed probe fails too.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from vidattn.core.identity import versions_of
from vidattn.core.paths import REPO_ROOT
from vidattn.data.fixtures import ucf101_fixture

PROBES_DIR = REPO_ROOT / "tests" / "probes"
RTOL, ATOL = 1e-3, 1e-4  # relative and absolute tolerance on every number of a probe's result
EXAMPLES_RTOL = 1e-2  # example arrays are rounded for display: one rounding step moves their summaries
# ill-conditioned numbers, prefix -> relative tolerance. CIDC: metrics that normalise the nearly flat
# maps of a barely trained network (measured: 1.2 % between AVX512 and the default instruction set).
# Pyramid on real data: a ResNet-50 from scratch whose batch norm sees a 4-clip batch of tiny frames
# (measured: 1.6 % on the epoch's loss at 64 px; 14 % at 32 px, hence 64 px in its probe)
LOOSE: dict[str, dict[str, float]] = {"cidc/train": {"metrics/mass_in_mask_": 5e-2},
                                      "pyramid/real": {"curves/loss/": 5e-2}}

PROBE_CONFIGS: dict[str, dict[str, Any]] = {
    'data/premise': {'suite': 'order_arrow',
         'suite_overrides': {'n_train': 16, 'n_test': 8},
         'model': 'tiny_c3d',
         'width': 16,
         'seed': 0,
         'device': 'cpu',
         'train': {'epochs': 2, 'batch_size': 4, 'lr': 0.003, 'weight_decay': 0.05}},
    'data/localisation': {'suite': 'actor_distractor',
         'suite_overrides': {'n_train': 16, 'n_test': 8},
         'model': 'tiny_c3d',
         'width': 16,
         'seed': 0,
         'device': 'cpu',
         'train': {'epochs': 2, 'batch_size': 4, 'lr': 0.003, 'weight_decay': 0.05}},
    'direcformer/train': {'suite': 'order',
         'suite_overrides': {'size': 24,
                             'n_train': 16,
                             'n_test': 8,
                             'background': 'texture',
                             'objects': 'shape'},
         'variant': 'C-S',
         'time_embed': True,
         'l_ord': 1,
         'l_self': 1,
         'perm_rule': 'max',
         'n_perms': 30,
         'model': {'patch_size': 8,
                   'dim': 48,
                   'depth': 3,
                   'heads': 4,
                   'mlp_ratio': 2.0,
                   'drop_path': 0.0,
                   'time_embed_std': 0.0},
         'train': {'batch_size': 4,
                   'lr': 0.001,
                   'weight_decay': 0.05,
                   'warmup_epochs': 0.5,
                   'clip_grad': 1.0,
                   'epochs': 2},
         'seed': 0,
         'device': 'cpu'},
    'cidc/train': {'suite': 'order_events',
         'suite_overrides': {'programs': [['pulse', 'oscillate']],
                             'controls': [['pulse', 'pulse'], ['oscillate', 'oscillate']],
                             'distractors': 2,
                             'background': 'pan',
                             'travel': 0.2,
                             'noise': 0.08,
                             'size': 32,
                             'n_train': 16,
                             'n_test': 8},
         'backbone': {'name': 'tiny', 'width': 16, 'temporal_stem': True},
         'backbone_train': {'batch_size': 4,
                            'lr': 0.002,
                            'weight_decay': 0.0001,
                            'warmup_epochs': 0.5,
                            'epochs': 2},
         'head': {'name': 'cidc',
                  'direction': 'bi',
                  'scales': 3,
                  'units': 2,
                  'attention': True,
                  'fusion': 'concat_t',
                  'norm': 'n1'},
         'head_train': {'batch_size': 4, 'lr': 0.001, 'weight_decay': 0.0001, 'epochs': 2},
         'seed': 0,
         'device': 'cpu'},
    'sifa/train': {'suite': 'binding',
         'suite_overrides': {'n_train': 16, 'n_test': 8},
         'model': {'temporal': {'name': 'sifa', 'k': 3, 'offsets': 'saliency', 'semantics': 'code'},
                   'stages': [2, 3],
                   'temporal_stem': 1},
         'train': {'optimizer': 'sgd',
                   'lr': 0.05,
                   'momentum': 0.9,
                   'nesterov': True,
                   'weight_decay': 0.0001,
                   'warmup_epochs': 1.0,
                   'clip_grad': 40.0,
                   'batch_size': 4,
                   'epochs': 2},
         'seed': 0,
         'device': 'cpu',
         'offset_lr': 0.1},
    'spatial/pretrain': {'suite': 'glyph',
         'suite_overrides': {'n_train': 16, 'n_test': 8},
         'backbone': 'S',
         'stage1': {'optimizer': 'sgd',
                    'lr': 0.01,
                    'momentum': 0.9,
                    'weight_decay': 4e-05,
                    'min_lr_ratio': 0.01,
                    'batch_size': 4,
                    'epochs': 2},
         'seed': 0,
         'device': 'cpu'},
    'spatial/train': {'suite': 'glyph',
         'suite_overrides': {'n_train': 16, 'n_test': 8},
         'backbone': 'S',
         'stage1': {'optimizer': 'sgd',
                    'lr': 0.01,
                    'momentum': 0.9,
                    'weight_decay': 4e-05,
                    'min_lr_ratio': 0.01,
                    'batch_size': 8,
                    'epochs': 1},
         'seed': 0,
         'device': 'cpu',
         'mode': 'O+C+D',
         'zoom': {'grid': 16,
                  'pad': 15,
                  'fwhm': 6.5,
                  'base': 0.09,
                  'beta': [0.09, 0.3],
                  'delta': 0.2,
                  'beta_lr': 0.0},
         'train': {'optimizer': 'sgd',
                   'lr': 0.01,
                   'momentum': 0.9,
                   'weight_decay': 4e-05,
                   'min_lr_ratio': 0.01,
                   'batch_size': 8,
                   'epochs': 1},
         'examples': True},
    'pyramid/pretrain': {'suite': 'synthact',
         'suite_overrides': {'n_train': 16, 'n_test': 8},
         'pretrain': {'optimizer': 'sgd',
                      'momentum': 0.9,
                      'weight_decay': 4e-05,
                      'min_lr_ratio': 0.01,
                      'batch_size': 4,
                      'lr': 0.05,
                      'epochs': 2},
         'seed': 0,
         'device': 'cpu'},
    'pyramid/train': {'suite': 'synthact',
         'suite_overrides': {'n_train': 16, 'n_test': 8},
         'pretrain': {'optimizer': 'sgd',
                      'momentum': 0.9,
                      'weight_decay': 4e-05,
                      'min_lr_ratio': 0.01,
                      'batch_size': 8,
                      'lr': 0.05,
                      'epochs': 1},
         'seed': 0,
         'device': 'cpu',
         'stream': 'flow',
         'model': {'scales': 3, 'fusion': 'product', 'dropout': {'rgb': 0.5, 'flow': 0.7}},
         'losses': {'beta': 0.0001, 'gamma': 0.0001},
         'flow': {'method': 'dis', 'length': 5, 'compensate': False, 'opencv': '5.0.0'},
         'train_k': 3,
         'test_k': 6,
         'train': {'optimizer': 'sgd',
                   'momentum': 0.9,
                   'weight_decay': 4e-05,
                   'min_lr_ratio': 0.01,
                   'batch_size': 8,
                   'lr': 0.01,
                   'epochs': 1}},
    'h2h/train': {'mechanism': 'directed attention',
         'suite': 'events',
         'n_train': 16,
         'n_test': 8,
         'widths': [8, 8, 16],
         'train': {'optimizer': 'sgd', 'momentum': 0.9, 'nesterov': True, 'weight_decay': 1e-4,
                   'warmup_epochs': 1.0, 'clip_grad': 40.0, 'batch_size': 4, 'lr': 0.05, 'epochs': 2},
         'seed': 0,
         'device': 'cpu'},
}

# the real-data experiments' probes: the last row of each chapter's real runs on :func:`ucf101_fixture`
# (the size overrides of the chapters' full-path tests, no weights; learning rates / 100, which keeps
# a from-scratch run of the paper recipe from diverging: a diverging probe amplifies kernel rounding);
# ``{fixture}`` is its root
REAL_PROBE_CONFIGS: dict[str, dict[str, Any]] = {
    'direcformer/real': {'data': {'root': '{fixture}',
                  'dataset': 'ucf101',
                  'split': '',
                  'fingerprint': '68d0ae0d5213dc3bf56ddd1a88d4d80f6085610d10c81b72d96d452ba3ccadaf',
                  'on_bad_video': 'error',
                  'train': {'mode': 'tsn', 'frames': 8, 'size': 32},
                  'test': {'mode': 'tsn', 'frames': 8, 'size': 32, 'clips': 1, 'three_crop': True}},
         'variant': 'C-S',
         'time_embed': True,
         'l_ord': 1,
         'l_self': 1,
         'perm_rule': 'max',
         'n_perms': 30,
         'model': {'patch_size': 16, 'dim': 32, 'depth': 2, 'heads': 2, 'mlp_ratio': 4.0, 'drop_path': 0.1},
         'train': {'batch_size': 4,
                   'optimizer': 'sgd',
                   'lr': 5e-05,
                   'momentum': 0.9,
                   'nesterov': True,
                   'weight_decay': 0.0001,
                   'schedule': 'step',
                   'milestones': [11, 14],
                   'gamma': 0.1,
                   'epochs': 1},
         'weights': None,
         'seed': 0,
         'device': 'cpu'},
    'cidc/real': {'data': {'root': '{fixture}',
                  'dataset': 'ucf101',
                  'split': '',
                  'fingerprint': '68d0ae0d5213dc3bf56ddd1a88d4d80f6085610d10c81b72d96d452ba3ccadaf',
                  'on_bad_video': 'error',
                  'train': {'mode': 'dense', 'frames': 16, 'stride': 2, 'size': 32},
                  'test': {'mode': 'dense',
                           'frames': 16,
                           'stride': 2,
                           'size': 32,
                           'clips': 10,
                           'three_crop': True}},
         'backbone': {'name': 'i3d', 'non_local': False},
         'weights': None,
         'backbone_train': {'batch_size': 8,
                            'optimizer': 'sgd',
                            'lr': 0.0001,
                            'momentum': 0.9,
                            'weight_decay': 0.0001,
                            'schedule': 'step',
                            'milestones': [40, 80],
                            'gamma': 0.1,
                            'epochs': 1},
         'head': {'name': 'cidc',
                  'direction': 'bi',
                  'scales': 3,
                  'units': 2,
                  'attention': True,
                  'fusion': 'concat_t',
                  'norm': 'n1'},
         'head_train': {'batch_size': 8,
                        'optimizer': 'sgd',
                        'lr': 0.0001,
                        'momentum': 0.9,
                        'weight_decay': 0.0001,
                        'schedule': 'step',
                        'milestones': [40, 80],
                        'gamma': 0.1,
                        'epochs': 1},
         'seed': 0,
         'device': 'cpu'},
    'sifa/real': {'data': {'root': '{fixture}',
                  'dataset': 'ucf101',
                  'split': '',
                  'fingerprint': '68d0ae0d5213dc3bf56ddd1a88d4d80f6085610d10c81b72d96d452ba3ccadaf',
                  'on_bad_video': 'error',
                  'train': {'mode': 'dense', 'frames': 8, 'stride': 1, 'size': 32},
                  'test': {'mode': 'dense',
                           'frames': 8,
                           'stride': 1,
                           'size': 32,
                           'three_crop': True,
                           'clips': 1}},
         'model': {'depth': 50, 'design': 'released', 'sifa_stages': [3, 4, 5]},
         'weights': None,
         'train': {'optimizer': 'sgd',
                   'lr': 5e-05,
                   'momentum': 0.9,
                   'weight_decay': 0.0001,
                   'warmup_epochs': 1.0,
                   'clip_grad': 40.0,
                   'batch_size': 4,
                   'epochs': 1},
         'seed': 0,
         'device': 'cpu'},
    'spatial/real': {'data': {'root': '{fixture}',
                  'dataset': 'ucf101',
                  'split': '',
                  'fingerprint': '68d0ae0d5213dc3bf56ddd1a88d4d80f6085610d10c81b72d96d452ba3ccadaf',
                  'on_bad_video': 'error',
                  'train': {'mode': 'dense', 'frames': 8, 'stride': 1, 'size': 48},
                  'test': {'mode': 'dense',
                           'frames': 8,
                           'stride': 1,
                           'size': 48,
                           'three_crop': True,
                           'clips': 10}},
         'mode': 'O+C+D',
         'zoom': {'grid': 31,
                  'pad': 30,
                  'fwhm': 13.0,
                  'base': 0.09,
                  'beta': [0.09, 0.3],
                  'delta': 0.2,
                  'beta_lr': 0.0},
         'weights': None,
         'train': {'optimizer': 'sgd',
                   'lr': 0.001,
                   'momentum': 0.9,
                   'weight_decay': 4e-05,
                   'min_lr_ratio': 0.001,
                   'batch_size': 4,
                   'epochs': 1},
         'seed': 0,
         'device': 'cpu'},
    'pyramid/real': {'data': {'root': '{fixture}',
                  'dataset': 'ucf101',
                  'split': '',
                  'fingerprint': '68d0ae0d5213dc3bf56ddd1a88d4d80f6085610d10c81b72d96d452ba3ccadaf',
                  'on_bad_video': 'error',
                  'train': {'mode': 'tsn', 'frames': 3, 'size': 64},
                  'test': {'mode': 'tsn', 'frames': 8, 'size': 64, 'three_crop': True}},
         'model': {'backbone': 'resnet50', 'scales': 3, 'fusion': 'product', 'dropout': 0.5},
         'losses': {'beta': 0.0, 'gamma': 0.0},
         'weights': None,
         'train': {'optimizer': 'sgd',
                   'lr': 1e-05,
                   'momentum': 0.9,
                   'weight_decay': 4e-05,
                   'schedule': 'step',
                   'gamma': 0.1,
                   'batch_size': 4,
                   'epochs': 1,
                   'milestones': [1, 2]},
         'seed': 0,
         'device': 'cpu'},
}
PROBE_CONFIGS.update(REAL_PROBE_CONFIGS)


def probe_path(name: str) -> Path:
    """The committed expected outputs of ``name``'s probe."""
    return PROBES_DIR / f"{name.replace('/', '__')}.json"


def _numbers(obj: Any, prefix: str = "") -> dict[str, float]:
    """Every number of a (normalised) result, by path; speed measurements left out."""
    from vidattn.core.store import is_timing

    out: dict[str, float] = {}
    if isinstance(obj, dict):
        for k in sorted(obj):
            if not is_timing(str(k)):
                out.update(_numbers(obj[k], f"{prefix}{k}/"))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(_numbers(v, f"{prefix}{i}/"))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix.rstrip("/")] = float(obj)
    return out


def _values(result: dict[str, Any]) -> dict[str, float]:
    """What a probe keeps of a result (module docstring): numbers, and summaries of examples."""
    out = _numbers({k: v for k, v in result.items() if k != "examples"})
    examples = result.get("examples", {})
    groups = examples.items() if isinstance(examples, dict) else enumerate(examples)
    for name, value in groups:
        x = np.array(list(_numbers(value).values()) or [0.0], float)
        out.update({f"examples/{name}/count": float(len(_numbers(value))), f"examples/{name}/mean": float(x.mean()),
                    f"examples/{name}/mean_abs": float(np.abs(x).mean())})
    return out


def _suite_checksums(data: Path) -> dict[str, str]:
    """sha256 of each generated split under ``data/cache/suite/*``, named ``generator/split``."""
    sums = {}
    for path in sorted((data / "cache").glob("suite/*/*/*.npz")):
        h = hashlib.sha256()
        with np.load(path) as z:
            for member in ("videos", "masks", "labels"):
                h.update(np.ascontiguousarray(z[member]).tobytes())
        sums[f"{path.parent.parent.name}/{path.stem}"] = h.hexdigest()[:16]
    return sums


def run_probe(name: str) -> dict[str, Any]:
    """Run ``name``'s probe from scratch: {"versions", "suites", "values"}."""
    from vidattn.core import store

    if name not in PROBE_CONFIGS:
        raise ValueError(f"experiment {name!r} has no probe; probed: {sorted(PROBE_CONFIGS)}")
    with store.scratch_data_dir() as data:
        config = PROBE_CONFIGS[name]
        if name in REAL_PROBE_CONFIGS:
            root = ucf101_fixture(data / "fixture" / "ucf101").resolve()
            config = json.loads(json.dumps(config).replace("{fixture}", str(root)))
        result, _ = store.execute(name, config)
        suites = _suite_checksums(data)
    return {"versions": versions_of(name), "suites": suites, "values": _values(result)}


def expected(name: str) -> dict[str, Any]:
    """The committed outputs of ``name``'s probe (a clear error when there are none)."""
    path = probe_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no committed probe for {name!r}; write it with "
                                f"`vidattn probe --update {name}`")
    return json.loads(path.read_text())


def write(name: str, outputs: dict[str, Any]) -> Path:
    """Commit-ready expected outputs of ``name``'s probe (with its config)."""
    path = probe_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"experiment": name, "config": PROBE_CONFIGS[name], **outputs}, indent=1,
                               sort_keys=True) + "\n")
    return path


def check(name: str, fresh: dict[str, Any], stored: dict[str, Any]) -> list[str]:
    """What differs between a fresh probe run and the committed one (empty when it holds)."""
    problems = []
    if stored.get("config") != PROBE_CONFIGS[name]:
        problems.append("the probe's config is not the committed one")
    if stored["versions"] != fresh["versions"]:
        problems.append(f"versions {fresh['versions']} but the probe was committed at {stored['versions']}: "
                        "a bumped version needs a refreshed probe")
    for split in sorted(set(stored["suites"]) | set(fresh["suites"])):
        if stored["suites"].get(split) != fresh["suites"].get(split):
            problems.append(f"suite {split}: checksum {fresh['suites'].get(split)}, "
                            f"committed {stored['suites'].get(split)}")
    a, b = stored["values"], fresh["values"]
    for k in sorted(set(a) | set(b)):
        if k not in a or k not in b:
            problems.append(f"{k}: {'new' if k in b else 'gone'}")
        elif not math.isclose(a[k], b[k], rel_tol=_rtol(name, k), abs_tol=ATOL):
            problems.append(f"{k}: {b[k]:.6g}, committed {a[k]:.6g}")
    return problems


def _rtol(name: str, key: str) -> float:
    loose = [t for prefix, t in LOOSE.get(name, {}).items() if key.startswith(prefix)]
    return loose[0] if loose else EXAMPLES_RTOL if key.startswith("examples/") else RTOL


def advice(name: str, problems: list[str]) -> str:
    """The failure message: what changed, and the two ways out."""
    shown = "; ".join(problems[:6]) + (f"; ... ({len(problems)} in all)" if len(problems) > 6 else "")
    return (f"probe of {name!r} differs from {probe_path(name).relative_to(REPO_ROOT)}: {shown}. "
            f"The code now computes something else. Either revert the change, or bump the version of "
            f"{name!r} (or of what it uses: {sorted(set(versions_of(name)) - {name})}) and run "
            f"`vidattn probe --update {name}`: its records become stale and `make retrain` regenerates them.")
