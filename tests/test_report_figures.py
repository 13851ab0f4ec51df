"""The report's figures with about twenty methods: one colour per method in every figure,
families in neighbouring hues, point labels that do not overlap, and the main table ordered
by family with the proposed method last."""

from __future__ import annotations

import colorsys
import itertools
import os

import pytest

from bench.report import build_report
from bench.report.labels import overlapping_pairs
from bench.report.palette import FAMILIES, method_colours
from conftest import hand_record, write_records

SEED_BASELINES = ["finetune", "amnesiac", "unsir", "boundary_shrink", "boundary_expand", "shrink_frozen_bn"]
RECENT = ["ga", "neggrad_plus", "rl", "l1_sparse", "salun", "scrub", "bad_teacher", "ssd"]
FCALB = ["fcalb_fixed", "fc_only", "fcalb"]
CLASSES = {"shrink_frozen_bn": "boundary_shrink", "fcalb_fixed": "fcalb", "fc_only": "fcalb"}
TUNED = [*SEED_BASELINES, *RECENT, "fcalb"]  # a "+tuned" entry too: 34 points a panel, as the cpu profile's 33 entries
ALL = ["ssd", "retrain", *SEED_BASELINES, "original", *RECENT, *FCALB]  # a sweep lists them in no useful order


def crowded_records() -> list[dict]:
    """Three seeds of 19 methods plus 15 tuned variants on two scenarios, whose costs and gaps
    nearly coincide, so that naive labels would pile up."""
    records = []
    names = list(dict.fromkeys(ALL)) + [m + "+tuned" for m in TUNED]
    for seed, scenario in itertools.product(range(3), ("class:3", "random:0.1")):  # two panels side by side
        for i, method in enumerate(names):
            base = method.removesuffix("+tuned")
            metrics = {
                "forget_acc": 0.02 + 0.004 * (i % 5), "retain_acc": 0.9, "test_acc": 0.85, "mia_entropy": 0.1 + 0.003 * (i % 7),
                "avg_gap": 0.05 + 0.002 * (i % 6), "time_s": 2.0 + 0.05 * (i % 4), "speedup": 5.0, "js_retrain": 0.1,
                "pred_dist_js": 0.1, "peak_mem_mib": 900.0,
            }
            if base == "retrain":
                metrics.update(forget_acc=0.0, avg_gap=0.0, time_s=10.0)
            records.append(hand_record(method, seed, metrics, scenario=scenario, method_class=CLASSES.get(base, base),
                                       rounds=[{"forget_loss": 0.5, "retain_loss": 0.1, "forget_weight": 1.0, "retain_weight": 1.0}]
                                       if CLASSES.get(base, base) == "fcalb" else None,
                                       histograms={"model": [0.5, 0.5], "retrain": [0.4, 0.6], "original": [0.0, 1.0]}))
    return records


@pytest.fixture(scope="module")
def crowded_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("crowded")
    return build_report(write_records(tmp / "runs", crowded_records()), tmp / "plots")


def hue(colour: str) -> float:
    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return colorsys.rgb_to_hls(r, g, b)[0]


def test_palette_one_colour_per_method_families_in_their_hue_ranges():
    families = {**{m: "seed_baselines" for m in SEED_BASELINES}, **{m: "recent_baselines" for m in RECENT},
                **{m: "fcalb" for m in FCALB}, "retrain": "reference", "original": "reference", "plugin": "other"}
    methods = list(families) + ["ga+tuned", "fcalb+tuned"]
    colours = method_colours(methods, families)
    bases = [m for m in methods if not m.endswith("+tuned")]
    assert len({colours[m] for m in bases}) == len(bases)  # no two methods share a colour
    assert colours["ga+tuned"] == colours["ga"] and colours["fcalb+tuned"] == colours["fcalb"]
    for method in bases:
        hues = FAMILIES[families[method]][1]
        if hues is None:
            continue
        low, high = hues
        h = hue(colours[method])
        assert low - 0.01 <= h <= high + 0.01 or low - 0.01 <= h + 1 <= high + 0.01, (method, h)
    spread = [hue(colours[m]) for m in RECENT]  # neighbours in the family's order step evenly through its range
    steps = [b - a for a, b in zip(spread, spread[1:])]
    assert all(s > 0 for s in steps) and max(steps) - min(steps) < 0.02


def test_every_figure_draws_each_method_in_its_one_colour(crowded_report):
    seen: dict[str, set[str]] = {}
    for figure in crowded_report.figures:
        for method, colours in figure.colours.items():
            seen.setdefault(method.removesuffix("+tuned"), set()).update(colours)
    assert set(seen) >= set(ALL)  # every method is drawn somewhere in colour
    for method, colours in seen.items():
        assert len(colours) == 1, (method, colours)  # one colour, in every figure, tuned variant included
    owners = {}
    for method, colours in seen.items():
        (colour,) = colours
        assert colour not in owners, (method, owners.get(colour))
        owners[colour] = method
    names = {f.name for f in crowded_report.figures}
    assert {"cost_vs_quality", "mia_vs_forget", "bars__avg_gap"} <= names


@pytest.mark.parametrize("name", ["cost_vs_quality", "mia_vs_forget"])
def test_scatter_labels_do_not_overlap(crowded_report, name):
    figure = next(f for f in crowded_report.figures if f.name == name)
    names = sorted(set(ALL) | {m + "+tuned" for m in TUNED})
    assert sorted(n for n, _ in figure.labels) == sorted(names * 2)  # every point of both panels named once
    # across the two panels too: a label pushed out of its panel must not land on the other's
    assert overlapping_pairs(list(figure.labels)) == []


def test_main_table_is_ordered_by_family_with_the_proposed_method_last(crowded_report):
    text = (crowded_report.tables_dir / "main__digits__cnn__class-3.md").read_text()
    rows = [line.split("|")[1].strip().rstrip("§") for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    expected = ["retrain", "original"]
    for family in (SEED_BASELINES, RECENT):
        for method in sorted(family):  # by name within a family (the records' order)
            expected += [method] + ([method + "+tuned"] if method in TUNED else [])
    assert rows == expected + ["fcalb", "fcalb+tuned"]


def test_forked_figure_jobs_return_in_order_what_they_return_here():
    """The report's figures are drawn by forked workers; each job's result comes back in the
    jobs' order, the same as drawing them one after the other in this process."""
    from functools import partial

    from bench.report.figures import run_jobs

    jobs = [partial(lambda i: {"job": i, "square": i * i}, i) for i in range(7)]
    assert run_jobs(jobs, workers=2) == run_jobs(jobs, workers=1) == [{"job": i, "square": i * i} for i in range(7)]
    assert os.getpid() not in run_jobs([os.getpid] * 2, workers=2)  # drawn in other processes


def test_overlapping_pairs_by_hand():
    boxes = [("a", (0, 0, 10, 5)), ("b", (9, 4, 20, 9)), ("c", (10, 0, 15, 4)), ("d", (0, 5, 9, 9))]
    assert overlapping_pairs(boxes) == [("a", "b")]  # c and d only touch a's or b's edges


def test_scatter_figures_have_one_panel_per_dataset_and_scenario(tmp_path):
    from bench.report import resolve_options
    from bench.report.drawing import pyplot, report_colours
    from bench.report.load import load_results
    from bench.report.scatter import cost_vs_quality, scatter_panels

    metrics = {"forget_acc": 0.1, "retain_acc": 0.9, "test_acc": 0.85, "mia_entropy": 0.2, "avg_gap": 0.05, "time_s": 2.0}
    groups = [("digits", "class:3"), ("letters", "class:3"), ("letters", "random:0.1")]  # digits: no random runs
    records = [hand_record(method, 0, {**metrics, "avg_gap": 0.05 * (method != "retrain")}, scenario=scenario, dataset=dataset)
               for dataset, scenario in groups for method in ("retrain", "rl")]
    results = load_results([write_records(tmp_path, records)])
    figure, grid, panels = scatter_panels(results, "time_s", "avg_gap")
    titles = ["digits (cnn), class:3", "digits (cnn), random:0.1", "letters (cnn), class:3", "letters (cnn), random:0.1"]
    assert [ax.get_title() for ax, _d, _label, _points in panels] == titles  # rows: datasets; columns: scenarios
    assert len({id(ax) for ax, _d, _label, _points in panels}) == 4  # no two datasets share a panel
    for ax, _d, label, points in [panels[0], *panels[2:]]:
        assert sorted(points["method"]) == ["retrain", "rl"] and set(points["dataset"]) == {label.split()[0]}
    assert panels[1][3].empty and [t.get_text() for t in panels[1][0].texts] == ["no runs"]
    assert grid.shape == (2, 2) and grid[0, -1] is panels[1][0]  # the legend's panel, top right: here without a front
    pyplot().close(figure)
    options = resolve_options(results)
    drawn = cost_vs_quality(results, options, tmp_path / "plots", report_colours(results, options))
    assert drawn.legend == ("Pareto front", "digits (cnn)", "letters (cnn)")
    assert sorted(name for name, _box in drawn.labels) == ["retrain", "retrain", "retrain", "rl", "rl", "rl"]


def test_tuning_figure_draws_each_methods_best_so_far(tmp_path, monkeypatch):
    """Per (dataset, scenario), one step line per study through the best objective so far,
    a ringed marker where the best came, and the last fifth of the budget shaded."""
    import numpy as np
    import yaml

    from bench.report import figures, resolve_options
    from bench.report.drawing import METHOD_GID, report_colours
    from bench.report.load import load_results

    def entry(method, scenario, history):
        return {"dataset": "digits", "scenario": scenario, "method": method, "method_class": method, "dataset_hash": "h",
                "space": {"lr": "log-uniform [0.0001, 0.1]"}, "defaults": {"lr": 0.02}, "params": {"lr": 0.05},
                "history": history}

    histories = {
        ("ga", "class:3"): [0.4, None, 0.2, 0.3, 0.1],  # best at 4 of 5: the last fifth
        ("rl", "class:3"): [None, 0.5, 0.05, 0.3, 0.2],  # trial 0 failed: no best yet; best at 2
        ("ga", "random:0.1"): [0.3, 0.0, 0.2],  # a zero: no log scale
    }
    tuned = {"sweep": "hand", "budget": 5, "tuning_seeds": [100], "validation_size": 0.1, "objective": "avg_gap", "config_hash": "x",
             "entries": [entry(m, s, h) for (m, s), h in histories.items()]}
    records = [hand_record(m, 0, {"avg_gap": 0.1}, scenario=s) for m, s in [("ga", "class:3"), ("rl", "class:3"), ("ga", "random:0.1")]]
    folder = write_records(tmp_path / "h", records)
    (folder / "tuned.yaml").write_text(yaml.safe_dump(tuned))
    results = load_results([folder])
    colours = report_colours(results, resolve_options(results))

    drawn = {}
    save = figures.save

    def inspect(figure, folder, name, title, caption):
        (ax,) = figure.axes
        lines = {}
        for line in ax.get_lines():
            method = (line.get_gid() or "").removeprefix(METHOD_GID)
            kind = "step" if line.get_drawstyle() == "steps-post" else "ring" if line.get_markeredgecolor() == "black" else "points"
            lines[(method, kind)] = (list(line.get_xdata()), list(line.get_ydata()))
        (span,) = ax.patches
        drawn[name] = (lines, ax.get_yscale(), span.get_x(), span.get_width(), ax.get_title())
        return save(figure, folder, name, title, caption)

    monkeypatch.setattr(figures, "save", inspect)
    made = figures.tuning_figures(results, tmp_path / "plots", colours)
    assert [f.name for f in made] == ["tuning__digits__class-3", "tuning__digits__random-0.1"]
    lines, scale, start, width, title = drawn["tuning__digits__class-3"]
    nan = np.nan
    np.testing.assert_array_equal(lines[("ga", "step")][1], [0.4, 0.4, 0.2, 0.2, 0.1])
    np.testing.assert_array_equal(lines[("rl", "step")][1], [nan, 0.5, 0.05, 0.05, 0.05])
    np.testing.assert_array_equal(lines[("rl", "points")][1], [nan, 0.5, 0.05, 0.3, 0.2])
    assert lines[("ga", "ring")] == ([4], [0.1]) and lines[("rl", "ring")] == ([2], [0.05])
    assert scale == "log" and (start, start + width) == pytest.approx((3.5, 4.5))  # trials 4 and on: index >= 0.8 x 5
    assert title.endswith("(best in the last fifth of the budget: 1 of 2 studies)")
    assert drawn["tuning__digits__random-0.1"][1] == "linear"  # log cannot show the zero
    figure = made[0]
    assert figure.colours == {"ga": (colours["ga"],), "rl": (colours["rl"],)}
    assert set(figure.legend) == {"ga", "rl", "last fifth of the budget"}
