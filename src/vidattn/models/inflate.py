"""I3D from an ImageNet ResNet-50: inflating a torchvision checkpoint into :class:`ResNet3d50`.

Inflation (Carreira & Zisserman 2017) turns every 2-D kernel ``w`` of shape
(C_out, C_in, k, k) into a 3-D kernel of temporal size ``k_t`` by repeating it along
time and dividing by ``k_t``. A clip of ``k_t`` identical frames then gives each
inflated convolution the output of the 2-D one on that frame: the network starts as
the image model applied frame by frame ("boring video" equivalence, tested). Batch
norms copy over; non-local blocks, absent from the image model, keep their
identity initialisation; the classifier is dropped.

Nothing downloads: the checkpoint is a local file in torchvision's layout
(``conv1.weight``, ``layer1.0.conv1.weight``, ... as ``torchvision.models.resnet50``
saves it). A missing file, a key the model lacks or a shape that does not fit raises
an error that names the file and the keys.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from vidattn.core.files import load_tensors
from vidattn.models.resnet3d import Bottleneck3d, ResNet3d50

SKIPPED_PREFIXES = ("fc.",)  # the ImageNet classifier


def torchvision_names(model: ResNet3d50) -> dict[str, str]:
    """Model key -> torchvision ResNet-50 key, for every parameter and buffer the image model has."""
    out = {}
    for own, theirs in (("stem.0", "conv1"), ("stem.1", "bn1")):
        for k in model.state_dict():
            if k.startswith(own + "."):
                out[k] = theirs + k[len(own):]
    for stage in range(2, 6):
        blocks = [(i, m) for i, m in enumerate(getattr(model, f"res{stage}")) if isinstance(m, Bottleneck3d)]
        for b, (i, _) in enumerate(blocks):  # non-local blocks sit between bottlenecks
            own, theirs = f"res{stage}.{i}.", f"layer{stage - 1}.{b}."
            for k in model.state_dict():
                if k.startswith(own):
                    out[k] = theirs + k[len(own):]
    return out


def inflate(weight: torch.Tensor, kt: int) -> torch.Tensor:
    """(C_out, C_in, k, k) -> (C_out, C_in, kt, k, k): repeated over time and divided by ``kt``."""
    return weight[:, :, None].repeat(1, 1, kt, 1, 1) / kt


def read_torchvision_resnet(path: str | Path, wanted: set[str], what: str) -> dict[str, torch.Tensor]:
    """The tensors of a torchvision ResNet checkpoint (wrappers and ``module.`` prefixes removed,
    the classifier dropped), refused with the file and keys named unless they are exactly ``wanted``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} checkpoint {path} not found; no weights can be downloaded here, so "
                                f"pass a local file in torchvision's layout (torchvision.models)")
    state = load_tensors(path, f"{what} checkpoint")
    for wrapper in ("model", "state_dict"):
        if isinstance(state, dict) and wrapper in state and isinstance(state[wrapper], dict):
            state = state[wrapper]
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.startswith(SKIPPED_PREFIXES)}
    missing = sorted(wanted - set(state))
    if missing:
        raise ValueError(f"checkpoint {path} lacks {len(missing)} key(s) of a torchvision {what}: "
                         f"{missing[:5]}{' ...' if len(missing) > 5 else ''}")
    unexpected = sorted(set(state) - wanted)
    if unexpected:
        raise ValueError(f"checkpoint {path} has key(s) a torchvision {what} does not: "
                         f"{unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
    return state


def load_mapped(model: torch.nn.Module, path: str | Path, names: dict[str, str], what: str,
                expand: Callable[[torch.Tensor, int], torch.Tensor]) -> dict[str, list[str]]:
    """Load the torchvision tensors ``names`` maps to (model key -> checkpoint key) into ``model``,
    a 2-D kernel becoming a 3-D one of temporal size ``kt`` by ``expand(weight, kt)``.

    Returns the model keys loaded and those left at their initial value; a tensor whose shape
    does not fit is an error naming the file and the keys.
    """
    state = read_torchvision_resnet(path, set(names.values()), what)
    own = model.state_dict()
    new, bad = {}, []
    for k, theirs in names.items():
        v = state[theirs]
        if own[k].dim() == 5 and v.dim() == 4:
            v = expand(v, own[k].shape[2])
        if v.shape != own[k].shape:
            bad.append(f"{theirs}: checkpoint {tuple(state[theirs].shape)} vs model {k} {tuple(own[k].shape)}")
        new[k] = v
    if bad:
        raise ValueError(f"checkpoint {path} does not fit this model: " + "; ".join(bad[:5]))
    model.load_state_dict(new, strict=False)
    return {"loaded": sorted(new), "initial": sorted(k for k in own if k not in new)}


def load_resnet50_inflated(model: ResNet3d50, path: str | Path) -> dict[str, list[str]]:
    """Initialise ``model`` from a torchvision ResNet-50 checkpoint by inflation.

    Returns the model keys loaded and those left at their initial value (the non-local
    blocks). Raises ``FileNotFoundError`` for a missing file and ``ValueError`` naming the
    file and the keys when the checkpoint lacks a key the model needs, has keys no
    ResNet-50 has, or holds a tensor whose shape does not fit.
    """
    return load_mapped(model, path, torchvision_names(model), "ResNet-50", inflate)
