"""The behaviour probes that guard each experiment's version: they hold, they hold on another
instruction set, and they catch a changed schedule, suite or initialisation."""
import os
import subprocess
import sys
from dataclasses import replace

import pytest
import torch

from vidattn import catalog  # noqa: F401  (registers every experiment)
from vidattn.core import identity, probes, registry
from vidattn.data.suites import motion
from vidattn.engine import train as train_mod
from vidattn.papers.sifa import experiment as sifa_mod


def test_every_registered_experiment_has_a_committed_probe():
    registered = {n for n, fn in registry.EXPERIMENTS.items() if fn.__module__.startswith("vidattn.papers.")}
    assert registered == set(probes.PROBE_CONFIGS)
    for name in registered:
        assert probes.expected(name)["versions"] == identity.versions_of(name)


@pytest.mark.parametrize("name", sorted(probes.PROBE_CONFIGS))
def test_the_probe_holds(name):
    problems = probes.check(name, probes.run_probe(name), probes.expected(name))
    assert not problems, probes.advice(name, problems)


def test_the_probes_hold_on_the_default_instruction_set():
    """Records travel between machines only if the probes' tolerance holds across kernels."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default"}
    code = "import sys, torch; from vidattn import cli; print(torch.backends.cpu.get_cpu_capability()); " \
           "sys.exit(cli.main(['probe']))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.splitlines()[0] == "DEFAULT" and out.stdout.count("OK  ") == len(probes.PROBE_CONFIGS)


def _fails(name: str) -> list[str]:
    return probes.check(name, probes.run_probe(name), probes.expected(name))


def test_a_changed_schedule_constant_fails_the_probes_of_the_experiments_that_train(monkeypatch):
    lr_factor = train_mod.lr_factor
    monkeypatch.setattr(train_mod, "lr_factor", lambda cfg, step, n: 0.9 * lr_factor(cfg, step, n))
    assert _fails("sifa/train") and _fails("data/premise")


def test_a_changed_suite_constant_fails_the_probe_of_the_experiment_on_that_suite(monkeypatch):
    monkeypatch.setitem(motion.MOTION_SUITES, "binding", replace(motion.MOTION_SUITES["binding"], noise=0.06))
    problems = _fails("sifa/train")
    assert any(p.startswith("suite motion/") for p in problems)
    assert not _fails("data/premise")  # another suite family: untouched


def test_a_changed_initialisation_fails_the_probe(monkeypatch):
    monkeypatch.setattr(sifa_mod, "seed_everything", lambda seed: torch.manual_seed(seed + 1))
    problems = _fails("sifa/train")
    assert problems and not any(p.startswith("suite") for p in problems)
    assert "bump the version of 'sifa/train'" in probes.advice("sifa/train", problems)


def test_a_version_bump_without_a_refreshed_probe_fails(monkeypatch):
    monkeypatch.setitem(identity.VERSIONS, "suite/motion", 2)
    [problem] = probes.check("sifa/train", probes.run_probe("sifa/train"), probes.expected("sifa/train"))
    assert "a bumped version needs a refreshed probe" in problem
