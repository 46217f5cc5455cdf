"""Pretrained weights from local files: a timm ViT into DirecFormer, a torchvision ResNet-50 inflated into I3D."""
import pytest
import torch
import torch.nn.functional as F
from real_fixtures import resnet50_checkpoint, vit_checkpoint

from vidattn.models.inflate import inflate, load_resnet50_inflated
from vidattn.models.resnet3d import ResNet3d50
from vidattn.papers.direcformer.model import DirecFormer, DirecFormerConfig, load_vit_weights


def _tiny_direcformer(**kw):
    return DirecFormer(DirecFormerConfig(num_classes=5, img_size=32, patch_size=16, frames=4, dim=32, depth=2,
                                         heads=2, num_orders=0, **kw))


def test_timm_vit_loads_into_direcformer_spatial_and_temporal(tmp_path):
    path = vit_checkpoint(tmp_path / "vit.pt")
    timm_state = torch.load(path, weights_only=True)
    model = _tiny_direcformer()
    report = load_vit_weights(model, path)
    own = model.state_dict()
    assert torch.equal(own["blocks.1.attn.qkv.weight"], timm_state["blocks.1.attn.qkv.weight"])
    # TimeSformer's start: temporal attention begins as a copy of the spatial one
    assert torch.equal(own["blocks.0.temporal_attn.qkv.weight"], timm_state["blocks.0.attn.qkv.weight"])
    assert torch.equal(own["patch_embed.proj.weight"], timm_state["patch_embed.proj.weight"])
    assert not any(k.startswith("head.") for k in report["loaded"])  # the ImageNet classifier is dropped
    assert set(report["initial"]) >= {"head.weight", "time_embed", "blocks.0.temporal_fc.weight"}


def test_a_mismatched_or_missing_vit_checkpoint_names_the_file_and_keys(tmp_path):
    wide = vit_checkpoint(tmp_path / "wide.pt", dim=64, heads=2)
    with pytest.raises(ValueError, match=r"wide.pt does not fit this model: .*checkpoint \(1, 1, 64\) vs model"):
        load_vit_weights(_tiny_direcformer(), wide)
    with pytest.raises(FileNotFoundError, match="nothing.pt not found.*local file"):
        load_vit_weights(_tiny_direcformer(), tmp_path / "nothing.pt")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "resnet.pt")
    with pytest.raises(ValueError, match=r"resnet.pt has keys this model does not .*conv1.weight"):
        load_vit_weights(_tiny_direcformer(), tmp_path / "resnet.pt")


@pytest.fixture(scope="module")
def r50(tmp_path_factory):
    return resnet50_checkpoint(tmp_path_factory.mktemp("w") / "resnet50.pt")


def test_resnet50_inflates_into_i3d(r50):
    from torchvision.models import resnet50

    image = resnet50()
    image.load_state_dict(torch.load(r50, weights_only=True))
    i3d = ResNet3d50(inflated=True, non_local=True)
    report = load_resnet50_inflated(i3d, r50)
    assert all(".theta." in k or ".phi." in k or ".g." in k or ".out." in k or ".bn." in k
               for k in report["initial"]) and report["initial"]  # only the non-local blocks stay new
    w3 = i3d.state_dict()
    assert w3["stem.0.weight"].shape == (64, 3, 5, 7, 7)
    assert torch.allclose(w3["stem.0.weight"].sum(2), image.conv1.weight, atol=1e-6)
    assert torch.equal(w3["res4.0.bn2.running_mean"], image.layer3[0].bn2.running_mean)
    # the "boring video" check: on a clip of one repeated frame the inflated stem convolution gives the
    # image model's convolution (away from the zero-padded ends of time)
    frame = torch.randn(1, 3, 32, 32)
    clip = frame[:, :, None].repeat(1, 1, 9, 1, 1)
    out3 = i3d.stem[0](clip)
    out2 = F.conv2d(frame, image.conv1.weight, stride=2, padding=3)
    assert torch.allclose(out3[:, :, 2], out2, atol=1e-4)
    w = torch.randn(2, 2, 3, 3)
    assert inflate(w, 3).shape == (2, 2, 3, 3, 3) and torch.allclose(inflate(w, 3).sum(2), w, atol=1e-6)


def test_a_resnet_checkpoint_lacking_a_key_names_it(r50, tmp_path):
    state = torch.load(r50, weights_only=True)
    del state["layer2.1.conv2.weight"]
    torch.save(state, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match=r"partial.pt lacks 1 key\(s\).*layer2.1.conv2.weight"):
        load_resnet50_inflated(ResNet3d50(), tmp_path / "partial.pt")
    with pytest.raises(FileNotFoundError, match="absent.pt not found"):
        load_resnet50_inflated(ResNet3d50(), tmp_path / "absent.pt")
