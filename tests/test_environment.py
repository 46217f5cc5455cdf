import re
from pathlib import Path

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_mirrors_pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = project["dependencies"] + [d for deps in project["optional-dependencies"].values() for d in deps]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_pins = [p for p in pip if not p.startswith("-e")]
    assert sorted(env_pins) == sorted(set(pins))  # an extra may repeat another's pin (test includes ray)
    for p in pins:
        assert re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][A-Za-z0-9.+]*", p), f"{p} is not pinned exactly"
    assert "torch==2.14.1" in pins and "torchvision==0.29.1" in pins
    assert any(p.startswith("jupyter-book==1.") for p in pins)


def test_top_level_layout():
    # _static: the book's stylesheet, where Jupyter Book looks for it (beside _config.yml)
    allowed = {"book", "notebooks", "src", "data", "tests", "_config.yml", "_toc.yml", "_static", "environment.yml",
               "README.md", "ARCHITECTURE.md", "Makefile", "pyproject.toml"}
    tracked = {p.name for p in ROOT.iterdir() if not p.name.startswith(".") and p.name not in
               {"_build", "outputs"} and not p.name.endswith(".egg-info")}
    assert tracked <= allowed, tracked - allowed
