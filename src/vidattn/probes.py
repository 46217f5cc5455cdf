"""Behaviour probes: what guards an experiment's declared version (:mod:`vidattn.identity`).

A record is keyed by its experiment's *version*, not by its code, so the code is free
to change as long as it computes the same thing. The probe of each registered
experiment checks that it does: a tiny config (:data:`PROBE_CONFIGS`) that runs the
experiment's real code path end to end (suite generation, model, a few optimiser
steps, evaluation) in a few seconds, in an empty data folder (no cache is read). Its
outputs are committed with the versions it ran at, in ``tests/probes/<name>.json``:

* ``suites``: sha256 of every suite split it generated (videos, masks, labels);
* ``values``: every number of its result (losses per epoch, metrics, curves, examples,
  per-clip outcomes), speed measurements excepted.

:func:`check` compares a fresh run with the committed one: checksums exactly, numbers
to :data:`RTOL` / :data:`ATOL`, a tolerance that holds across CPU instruction sets
(``tests/test_probes.py`` runs the probes natively and under
``ATEN_CPU_CAPABILITY=default``) and is far below what any change of schedule, suite or
initialisation moves. A mismatch says what to do: bump the version of the experiment
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

from vidattn.identity import versions_of
from vidattn.paths import REPO_ROOT

PROBES_DIR = REPO_ROOT / "tests" / "probes"
RTOL, ATOL = 1e-3, 1e-4  # relative and absolute tolerance on every number of a probe's result

PROBE_CONFIGS: dict[str, dict[str, Any]] = {
    'data/premise': {'suite': 'order_arrow',
         'suite_overrides': {'n_train': 16, 'n_test': 8},
         'model': 'tiny_c3d',
         'width': 16,
         'seed': 0,
         'device': 'cpu',
         'train': {'epochs': 1, 'batch_size': 8, 'lr': 0.003, 'weight_decay': 0.05}},
    'data/localisation': {'suite': 'actor_distractor',
         'suite_overrides': {'n_train': 16, 'n_test': 8},
         'model': 'tiny_c3d',
         'width': 16,
         'seed': 0,
         'device': 'cpu',
         'train': {'epochs': 1, 'batch_size': 8, 'lr': 0.003, 'weight_decay': 0.05}},
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
         'train': {'batch_size': 8,
                   'lr': 0.001,
                   'weight_decay': 0.05,
                   'warmup_epochs': 0.5,
                   'clip_grad': 1.0,
                   'epochs': 1},
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
         'backbone_train': {'batch_size': 8,
                            'lr': 0.002,
                            'weight_decay': 0.0001,
                            'warmup_epochs': 0.5,
                            'epochs': 1},
         'head': {'name': 'cidc',
                  'direction': 'bi',
                  'scales': 3,
                  'units': 2,
                  'attention': True,
                  'fusion': 'concat_t',
                  'norm': 'n1'},
         'head_train': {'batch_size': 8, 'lr': 0.001, 'weight_decay': 0.0001, 'epochs': 1},
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
                   'batch_size': 8,
                   'epochs': 1},
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
                    'batch_size': 8,
                    'epochs': 1},
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
                      'batch_size': 8,
                      'lr': 0.05,
                      'epochs': 1},
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
}


def probe_path(name: str) -> Path:
    """The committed expected outputs of ``name``'s probe."""
    return PROBES_DIR / f"{name.replace('/', '__')}.json"


def _flatten(obj: Any, prefix: str = "") -> dict[str, float]:
    """Every number of a (normalised) result, by path; speed measurements left out."""
    from vidattn.store import is_timing

    out: dict[str, float] = {}
    if isinstance(obj, dict):
        for k in sorted(obj):
            if not is_timing(str(k)):
                out.update(_flatten(obj[k], f"{prefix}{k}/"))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.update(_flatten(v, f"{prefix}{i}/"))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        out[prefix.rstrip("/")] = float(obj)
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
    from vidattn import store

    if name not in PROBE_CONFIGS:
        raise ValueError(f"experiment {name!r} has no probe; probed: {sorted(PROBE_CONFIGS)}")
    with store.scratch_data_dir() as data:
        result, _ = store.execute(name, PROBE_CONFIGS[name])
        suites = _suite_checksums(data)
    return {"versions": versions_of(name), "suites": suites, "values": _flatten(result)}


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
        elif not math.isclose(a[k], b[k], rel_tol=RTOL, abs_tol=ATOL):
            problems.append(f"{k}: {b[k]:.6g}, committed {a[k]:.6g}")
    return problems


def advice(name: str, problems: list[str]) -> str:
    """The failure message: what changed, and the two ways out."""
    shown = "; ".join(problems[:6]) + (f"; ... ({len(problems)} in all)" if len(problems) > 6 else "")
    return (f"probe of {name!r} differs from {probe_path(name).relative_to(REPO_ROOT)}: {shown}. "
            f"The code now computes something else. Either revert the change, or bump the version of "
            f"{name!r} (or of what it uses: {sorted(set(versions_of(name)) - {name})}) and run "
            f"`vidattn probe --update {name}`: its records become stale and `make retrain` regenerates them.")
