import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from vidattn.core.distributed import DistInfo
from vidattn.engine.train import TrainConfig, epoch_batches, fit, lr_factor, seed_everything

sys.path.insert(0, str(Path(__file__).parent))
from ddp_worker import CFG, Toy, train  # noqa: E402


def _params(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.state_dict().values() if p.dtype.is_floating_point])


def test_training_is_deterministic():
    a, b = train(CFG), train(CFG)
    assert torch.equal(_params(a), _params(b))


def test_training_reduces_the_loss():
    seed_everything(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 8 * 8, 5))
    res = fit(model, Toy(), TrainConfig(epochs=6, batch_size=8, lr=1e-2))
    assert res.history[-1]["train_loss"] < 0.5 * res.history[0]["train_loss"]
    assert res.clips_per_second > 0


def test_resumed_run_ends_identical_to_an_uninterrupted_one(tmp_path):
    def make():
        seed_everything(0)
        # dropout makes the RNG state part of what must be restored
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 8 * 8, 32), nn.Dropout(0.3), nn.ReLU(), nn.Linear(32, 5))

    straight = make()
    fit(straight, Toy(), CFG)
    ckpt = tmp_path / "run.pt"
    interrupted = make()
    fit(interrupted, Toy(), CFG, checkpoint=ckpt, stop_after_epoch=1)
    torch.manual_seed(999)  # whatever happens in between must not matter
    resumed = make()
    res = fit(resumed, Toy(), CFG, checkpoint=ckpt)
    assert res.resumed_from_epoch == 1 and len(res.history) == CFG.epochs
    assert torch.equal(_params(resumed), _params(straight))


def test_checkpoint_of_another_config_is_refused(tmp_path):
    ckpt = tmp_path / "run.pt"
    fit(nn.Sequential(nn.Flatten(), nn.Linear(768, 5)), Toy(), CFG, checkpoint=ckpt, stop_after_epoch=1)
    with pytest.raises(ValueError, match="different TrainConfig"):
        fit(nn.Sequential(nn.Flatten(), nn.Linear(768, 5)), Toy(), TrainConfig(epochs=2, batch_size=8), checkpoint=ckpt)


def test_nan_loss_raises_a_clear_error():
    model = nn.Sequential(nn.Flatten(), nn.Linear(768, 5))
    with torch.no_grad():
        model[1].weight.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="non-finite loss .* epoch 1, step 1"):
        fit(model, Toy(), CFG)


def test_schedules():
    step = TrainConfig(epochs=10, schedule="step", milestones=(4, 8), gamma=0.1)
    assert [round(lr_factor(step, e * 5, 5), 6) for e in (0, 3, 4, 7, 8, 9)] == [1, 1, 0.1, 0.1, 0.01, 0.01]
    warm = TrainConfig(epochs=10, warmup_epochs=2, schedule="cosine")
    assert lr_factor(warm, 0, 5) == pytest.approx(0.1)
    assert lr_factor(warm, 9, 5) == pytest.approx(1.0)
    assert lr_factor(warm, 10, 5) == pytest.approx(1.0)
    assert lr_factor(warm, 30, 5) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    with pytest.raises(ValueError, match="unknown optimizer"):
        TrainConfig(optimizer="lion")


def test_ranks_split_each_global_batch():
    cfg = TrainConfig(batch_size=8)
    whole = epoch_batches(64, cfg, 2, DistInfo())
    r0 = epoch_batches(64, cfg, 2, DistInfo(0, 2))
    r1 = epoch_batches(64, cfg, 2, DistInfo(1, 2))
    for w, a, b in zip(whole, r0, r1):
        assert torch.equal(torch.cat([a, b]), w)
    assert not torch.equal(torch.cat(whole), torch.cat(epoch_batches(64, cfg, 3, DistInfo())))


def test_torchrun_two_processes_match_one_process(tmp_path):
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(Path(__file__).parent / "ddp_worker.py"), str(out)]
    subprocess.run(cmd, check=True, env=env, timeout=300, capture_output=True)
    ddp = torch.load(out, weights_only=True)
    single = train(CFG).state_dict()
    for k in single:
        torch.testing.assert_close(ddp[k], single[k], rtol=1e-5, atol=1e-6)


def _toy_loop(cfg: TrainConfig):
    from vidattn.engine.train import build_loop

    seed_everything(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 8 * 8, 32), nn.Dropout(0.3), nn.ReLU(), nn.Linear(32, 5))
    return build_loop(model, len(Toy()), cfg, torch.device("cpu"))


def test_a_step_is_one_update_and_moves_the_schedule():
    from torch.utils.data import default_collate

    from vidattn.engine.train import classification_loss, train_step

    cfg = TrainConfig(epochs=2, batch_size=8, lr=1e-2, warmup_epochs=1.0)
    loop = _toy_loop(cfg)
    before, lr0 = _params(loop.model).clone(), loop.scheduler.get_last_lr()[0]
    batch = default_collate([Toy()[i] for i in range(8)])
    logs = train_step(loop, batch, classification_loss, "test")
    assert set(logs) == {"loss", "acc"} and math.isfinite(logs["loss"])
    assert not torch.equal(before, _params(loop.model)) and loop.scheduler.get_last_lr()[0] > lr0  # warming up


def test_an_epoch_averages_its_batches_and_counts_its_clips():
    from vidattn.engine.train import classification_loss, train_epoch

    cfg = TrainConfig(epochs=1, batch_size=8)
    row, clips = train_epoch(_toy_loop(cfg), Toy(), 0, classification_loss)
    assert set(row) == {"train_loss", "train_acc"} and clips == len(Toy()) // 8 * 8


def test_a_checkpoint_restores_weights_schedule_rng_and_history(tmp_path):
    from vidattn.engine.train import TrainResult, classification_loss, resume, save_checkpoint, train_epoch

    cfg = TrainConfig(epochs=3, batch_size=8)
    loop = _toy_loop(cfg)
    row, _ = train_epoch(loop, Toy(), 0, classification_loss)
    result = TrainResult(history=[{**row, "epoch": 1, "seconds": 0.5}], seconds=0.5)
    save_checkpoint(loop, tmp_path / "c.pt", 1, result)
    rng, weights, lr = torch.get_rng_state(), _params(loop.model), loop.scheduler.get_last_lr()
    torch.manual_seed(123)
    fresh, restored = _toy_loop(cfg), TrainResult()
    assert resume(fresh, tmp_path / "c.pt", restored) == 1
    assert torch.equal(_params(fresh.model), weights) and fresh.scheduler.get_last_lr() == lr
    assert torch.equal(torch.get_rng_state(), rng) and restored.history == result.history
    assert restored.resumed_from_epoch == 1 and restored.seconds == 0.5
