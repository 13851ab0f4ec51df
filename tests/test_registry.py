"""Methods: the registry, a method defined outside the project registered through its entry
point, and a failing method recorded as failed without stopping the sweep."""

from __future__ import annotations

import json
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

import pandas as pd
import pytest

from bench.core.errors import UserError
from bench.registry import ENTRY_POINT_GROUP, UnlearningMethod, get_method, method_names, register
from conftest import run_module, write_config

PLUGIN = '''
import torch
from bench.registry import MethodConfig, UnlearningMethod, register


@register("zero_head")
class ZeroHead(UnlearningMethod):
    """Zeroes the classifier head (a plugin registered by a decorator in its module)."""

    class Config(MethodConfig):
        scale: float = 0.0

    def unlearn(self, model, task):
        with torch.no_grad():
            model.head.weight.mul_(self.config.scale)
            model.head.bias.zero_()
        return model


class Explodes(UnlearningMethod):
    """Raises: the sweep must record the cell as failed and go on (registered by entry point name)."""

    def unlearn(self, model, task):
        raise RuntimeError("boom from a plugin")


class MakesNan(UnlearningMethod):
    """Returns non-finite weights."""

    def unlearn(self, model, task):
        with torch.no_grad():
            model.head.weight.fill_(float("nan"))
        return model
'''


def install_plugin(site: Path, package: str, source: str, entries: str) -> Path:
    """An installed third-party distribution under ``site``: a package and its dist-info
    declaring ``entries`` (``name = target`` lines) in group ``unlearn_bench.methods``."""
    (site / package).mkdir(parents=True)
    (site / package / "__init__.py").write_text(source)
    info = site / f"{package}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package.replace('_', '-')}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[unlearn_bench.methods]\n" + textwrap.dedent(entries))
    return site


@pytest.fixture()
def plugin_path(tmp_path) -> Path:
    return install_plugin(tmp_path / "site", "my_unlearning", PLUGIN, """\
        zero_head = my_unlearning
        explodes = my_unlearning:Explodes
        makes_nan = my_unlearning:MakesNan
        """)


def test_builtin_methods_are_registered():
    assert {"original", "retrain", "finetune"} <= set(method_names())
    assert get_method("finetune").Config().epochs == 5
    with pytest.raises(UserError, match="unknown method 'nope'; allowed: "):
        get_method("nope")


def test_register_rejects_what_is_not_a_method():
    with pytest.raises(TypeError, match="needs an UnlearningMethod subclass"):
        register("x")(object)

    class NeedsMagic(UnlearningMethod):
        needs = frozenset({"magic"})

    with pytest.raises(TypeError, match="known needs"):
        register("needs_magic")(NeedsMagic)


def test_entry_point_plugins_are_listed(plugin_path):
    result = run_module("bench.methods", env={"PYTHONPATH": str(plugin_path)})
    assert result.returncode == 0, result.stderr
    # the built-ins and the third party's through one entry-point group, each with its package
    assert "finetune  (methods.finetune.Finetune, from unlearn-bench)" in result.stdout
    assert "zero_head  (my_unlearning.ZeroHead, from my-unlearning)" in result.stdout
    assert "scale: float = 0.0" in result.stdout
    assert "explodes  (my_unlearning.Explodes, from my-unlearning)" in result.stdout
    declared = {e.value for e in entry_points(group=ENTRY_POINT_GROUP) if e.dist.name == "unlearn-bench"}
    assert {"methods.finetune", "methods.fcalb", "methods.boundary"} <= declared


def test_two_plugins_claiming_one_name_stop_with_one_line(tmp_path):
    """A third party's method registered as ``finetune``: whichever loads second, the command
    stops before any work, naming both classes and their packages."""
    clash = PLUGIN.replace('@register("zero_head")', '@register("finetune")')
    site = install_plugin(tmp_path / "site", "clashing", clash, "clashing = clashing\n")
    config = write_config(tmp_path / "c.yaml", scenarios=["class:3"], methods=["original"])
    for command in (["bench.methods"], ["bench.sweep", "--config", str(config), "--out", str(tmp_path / "out")]):
        result = run_module(*command, env={"PYTHONPATH": str(site)})
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]
        assert "method name 'finetune' is claimed twice: by " in result.stderr
        assert "methods.finetune.Finetune (package unlearn-bench)" in result.stderr
        assert "clashing.ZeroHead (package clashing)" in result.stderr
    assert not (tmp_path / "out").exists()


def test_plugin_runs_and_failures_are_recorded(plugin_path, tmp_path):
    config = write_config(
        tmp_path / "c.yaml", scenarios=["class:3"], methods=["original", "zero_head", "explodes", "makes_nan"]
    )
    out = tmp_path / "out"
    result = run_module("bench.sweep", "--config", str(config), "--out", str(out), "--no-progress",
                        env={"PYTHONPATH": str(plugin_path)})
    assert result.returncode == 0, result.stderr
    assert "4 cells run, 0 already finished, 2 failed" in result.stdout
    explodes = json.loads((out / "runs" / "digits__class3__s0__explodes.json").read_text())
    assert explodes["status"] == "failed" and explodes["error"] == "RuntimeError: boom from a plugin"
    assert "Traceback" in explodes["traceback"]
    nan = json.loads((out / "runs" / "digits__class3__s0__makes_nan.json").read_text())
    assert nan["status"] == "failed" and "non-finite weights" in nan["error"]
    table = pd.read_csv(out / "results.csv")
    zero = table[(table.method == "zero_head") & (table.metric == "test_acc")]
    assert zero["status"].tolist() == ["ok"]
    # a zeroed head predicts class 0 everywhere: test accuracy is the share of class 0 (36 of 360)
    assert zero["value"].item() == pytest.approx(36 / 360)
    failed = table[table.method.isin(["explodes", "makes_nan"])]
    assert failed["status"].tolist() == ["failed", "failed"] and failed["metric"].tolist() == ["status", "status"]
