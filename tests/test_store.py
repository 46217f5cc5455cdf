import json
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from vidattn.core import fingerprint, identity, registry, store
from vidattn.report.tables import aggregate, claims_ledger, paper_vs_ours

sys.path.insert(0, str(Path(__file__).parent))
from ddp_worker import Toy  # noqa: E402

PKG = fingerprint.PACKAGE_ROOT
CALLS = []


@registry.experiment("test/count", version=1)
def _count(config, run):
    CALLS.append(config)
    return {"metrics": {"value": float(config["x"] * 2 + config["seed"])}, "curves": {"loss": [1.0, 0.5]}}


def test_a_record_is_served_only_for_the_same_config(records_dir):
    CALLS.clear()
    a = store.run_or_load("test/count", {"x": 1, "seed": 0})
    b = store.run_or_load("test/count", {"x": 1, "seed": 0})
    assert len(CALLS) == 1 and b.metrics == a.metrics and b.key == a.key
    c = store.run_or_load("test/count", {"x": 2, "seed": 0})
    assert len(CALLS) == 2 and c.metrics["value"] == 4.0
    rec = json.loads(a.path.read_text())
    for field in ("config", "result", "wall_seconds", "device", "versions", "created", "key", "identity", "code"):
        assert field in rec
    assert rec["identity"] == {"name": "test/count", "versions": {"test/count": 1}, "config": {"x": 1, "seed": 0},
                               "device": "cpu"}
    assert a.path.parent == records_dir / "test/count"


def test_retrain_flag_reruns(records_dir, monkeypatch):
    CALLS.clear()
    store.run_or_load("test/count", {"x": 1, "seed": 0})
    monkeypatch.setenv("VIDATTN_RETRAIN", "1")
    store.run_or_load("test/count", {"x": 1, "seed": 0})
    assert len(CALLS) == 2


def test_device_type_is_part_of_the_key():
    assert store.record_key("test/count", {"x": 1}, "cpu") != store.record_key("test/count", {"x": 1}, "cuda")


@pytest.fixture
def temp_modules():
    """Two throwaway modules inside the package: ``_fp_a`` imports ``_fp_b``."""
    a, b = PKG / "_fp_a.py", PKG / "_fp_b.py"
    a.write_text("from vidattn import _fp_b\n\ndef f():\n    return _fp_b.g() + 1\n")
    b.write_text('"""doc"""\n\ndef g():\n    return 1\n')
    fingerprint.clear_cache()
    yield a, b
    a.unlink()
    b.unlink()
    fingerprint.clear_cache()


def _fp():
    fingerprint.clear_cache()
    return fingerprint.code_fingerprint(["vidattn._fp_a"])


def test_code_fingerprint_follows_imports_and_ignores_comments(temp_modules):
    a, b = temp_modules
    assert "vidattn._fp_b" in fingerprint.module_closure(["vidattn._fp_a"])
    base = _fp()
    b.write_text('"""another docstring"""\n\n# a comment\ndef g():\n    """doc"""\n    return 1  # same code\n')
    assert _fp() == base
    b.write_text('"""doc"""\n\ndef g():\n    return 2\n')
    assert _fp() != base, "a change in an imported module must invalidate the fingerprint"


def _edited_module(a, version: int):
    a.write_text(textwrap.dedent(f'''
        from vidattn import _fp_b
        from vidattn.core.registry import experiment

        @experiment("test/edited", version={version})
        def run(config, run):
            return {{"metrics": {{"v": float(_fp_b.g())}}}}
    '''))
    fingerprint.clear_cache()
    import importlib

    import vidattn._fp_a as mod
    registry.EXPERIMENTS.pop("test/edited", None)
    identity.VERSIONS.pop("test/edited", None)
    identity.USES.pop("test/edited", None)
    importlib.reload(mod)


def test_a_code_change_is_drift_and_a_version_bump_makes_records_stale(records_dir, temp_modules):
    a, b = temp_modules
    _edited_module(a, 1)
    rec = store.run_or_load("test/edited", {"seed": 0})
    assert rec.metrics["v"] == 1.0 and not store.stale_records() and rec.code == store.code_of("test/edited")
    b.write_text("def g():\n    return 2\n")  # the computation changed, the version did not (its probe fails)
    fingerprint.clear_cache()
    import importlib

    import vidattn._fp_b as modb
    importlib.reload(modb)
    assert not store.stale_records() and rec.code != store.code_of("test/edited")  # drift, not staleness
    _edited_module(a, 2)
    assert [r.key for r in store.stale_records()] == [rec.key]
    fresh = store.run_or_load("test/edited", {"seed": 0})
    assert fresh.key != rec.key and fresh.metrics["v"] == 2.0
    del registry.EXPERIMENTS["test/edited"]


def test_verify_reruns_and_compares_every_part(records_dir):
    rec = store.run_or_load("test/count", {"x": 3, "seed": 1})
    [v] = store.verify([rec])
    assert v.exact and v.diff == {} and v.holds
    rec.result["metrics"]["value"] = 99.0
    rec.result["curves"]["loss"] = [1.0, 0.25]
    [v] = store.verify([rec])
    assert v.diff == {"metrics/value": (99.0, 7.0), "curves/loss": ([1.0, 0.25], [1.0, 0.5])} and not v.holds


def test_verify_elsewhere_judges_against_the_rows_spread_over_seeds(records_dir):
    rows = [store.run_or_load("test/count", {"x": 3, "seed": s}) for s in (0, 1, 2)]  # values 6, 7, 8
    made_elsewhere = [store.Record(**{**r.__dict__, "versions": {**r.versions, "cpu_capability": "DEFAULT"}})
                      for r in rows]
    [v] = store.verify(made_elsewhere[:1], store_records=made_elsewhere)
    assert not v.exact and v.holds and v.spread["value"] == store.Spread(6.0, 7.0, 1.0, 6.0, 8.0, 3)
    shifted = [store.Record(**{**r.__dict__, "result": {"metrics": {"value": r.metrics["value"] + 10}}})
               for r in made_elsewhere]
    [v] = store.verify(shifted[:1], store_records=shifted)
    assert not v.holds and v.spread["value"].within is False


def test_corrupt_record_names_the_file(records_dir):
    rec = store.run_or_load("test/count", {"x": 5, "seed": 0})
    rec.path.write_text("{not json")
    with pytest.raises(ValueError, match=str(rec.path)):
        store.run_or_load("test/count", {"x": 5, "seed": 0})


def test_tables(records_dir):
    recs = [store.run_or_load("test/count", {"x": x, "seed": s}) for x in (1, 2) for s in (0, 1, 2)]
    agg = aggregate(recs, by=["x"], metrics=["value"])
    assert agg.loc[1, ("value", "mean")] == 3.0 and agg.loc[2, ("value", "std")] == 1.0
    assert agg.loc[1, ("seeds", "n")] == 3
    t = paper_vs_ours([{"row": "a", "paper": 97.55, "ours": (3.0, 1.0)}, {"row": "b", "paper": None, "ours": None}],
                      "ours (small, 3 seeds)")
    assert t.loc["a"].tolist() == ["97.55", "3.0 ± 1.0"] and t.loc["b"].tolist() == ["—", "—"]
    ledger = claims_ledger([{"claim": "c", "evidence": "e", "verdict": "no effect detected (|Δ| < 3.0 at 95 %)"},
                            {"claim": "d", "evidence": "e", "verdict": "not run here (needs UCF101)"}])
    assert isinstance(ledger, pd.DataFrame)
    for bad in ("sort of", "inconclusive", "reproducedish"):
        with pytest.raises(ValueError, match="not one of"):
            claims_ledger([{"claim": "c", "evidence": "e", "verdict": bad}])


def test_presentation_modules_do_not_enter_the_code_fingerprint():
    closure = fingerprint.module_closure(["vidattn.papers.data_suites.experiment"], exclude=store.NON_RESULT_MODULES)
    assert "vidattn.engine.train" in closure and "vidattn.data.suites.order" in closure
    assert not set(store.NON_RESULT_MODULES) & set(closure)


@registry.experiment("test/timed", version=1)
def _timed(config, run):
    import time

    return {"metrics": {"acc": 1.0, "train_clips_per_second": 1.0 / (time.perf_counter() % 1 + 1e-3)}}


def test_verify_ignores_speed_measurements(records_dir):
    rec = store.run_or_load("test/timed", {"seed": 0})
    [v] = store.verify([rec])
    assert v.diff == {}


@registry.experiment("test/interruptible", version=1)
def _interruptible(config, run):
    import torch.nn as nn

    from vidattn.engine.train import TrainConfig, fit, seed_everything

    seed_everything(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(768, 5))
    cfg = TrainConfig(epochs=3, batch_size=8)
    res = fit(model, Toy(), cfg, checkpoint=run.checkpoint(),
              stop_after_epoch=config.get("crash_after"))
    if config.get("crash_after") and not config.get("resume_ok"):
        raise KeyboardInterrupt("simulated interruption")
    return {"metrics": {"w": float(model[1].weight.sum().item()), "resumed_from": float(res.resumed_from_epoch)}}


def test_an_interrupted_experiment_resumes_from_its_checkpoint(records_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("VIDATTN_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(KeyboardInterrupt):
        store.run_or_load("test/interruptible", {"crash_after": 1})
    key = store.record_key("test/interruptible", {"crash_after": 1})
    ckpt = tmp_path / "data" / "checkpoints" / "test/interruptible" / f"{key}-train.pt"
    assert ckpt.is_file() and not list(records_dir.rglob("*.json"))
    # same config and code: the rerun resumes after epoch 1 and cleans up its checkpoint
    orig = registry.EXPERIMENTS["test/interruptible"]
    monkeypatch.setitem(registry.EXPERIMENTS, "test/interruptible",
                        lambda c, run: orig({**c, "resume_ok": True, "crash_after": None}, run))
    rec = store.run_or_load("test/interruptible", {"crash_after": 1})
    assert rec.metrics["resumed_from"] == 1.0 and not ckpt.exists()
    assert registry.Run().checkpoint() is None  # outside the store nothing resumes


def test_a_ledger_claim_names_its_records_and_verify_claim_recomputes_it(records_dir, tmp_path):
    from vidattn.report import claims
    from vidattn.report.stats import compare_records
    from vidattn.report.tables import claim_from, claims_ledger, ledger_json

    hi = [store.run_or_load("test/count", {"x": 4, "seed": s}) for s in (0, 1, 2)]
    lo = [store.run_or_load("test/count", {"x": 3, "seed": s}) for s in (0, 1, 2)]
    ledger = claims_ledger([claim_from("x = 4 beats x = 3", compare_records("value", "x=4", "x=3", hi, lo)),
                            {"claim": "quoted", "evidence": "-", "verdict": "not run here"}])
    row = ledger_json(ledger, [], "99_test", "small")["claims"][0]
    assert row["verdict"] == "reproduced" and list(row["rests_on"]["a"]) == [f"test/count/{r.key}" for r in hi]
    (tmp_path / "small").mkdir()
    (tmp_path / "small" / "99_test.json").write_text(json.dumps(ledger_json(ledger, [], "99_test", "small")))
    CALLS.clear()
    r = claims.recheck("99_test", "1", ledgers=tmp_path)
    assert r.holds and len(CALLS) == 6 and r.fresh.seeds.mean == 2.0  # every record re-run
    with pytest.raises(ValueError, match="nothing to reproduce"):
        claims.recheck("99_test", "quoted", ledgers=tmp_path)
    with pytest.raises(FileNotFoundError, match="no small ledger"):
        claims.recheck("98_none", "1", ledgers=tmp_path)


def test_verify_claim_errors_are_one_line(records_dir, capsys):
    from vidattn import cli

    assert cli.main(["store", "verify", "--claim", "04_sifa"]) == 2
    assert cli.main(["store", "verify", "--claim", "98_none:1", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "CHAPTER:CLAIM" in err[0] and "no smoke ledger" in err[1]
