"""The reference of a (dataset, scenario, seed) is saved once and loaded by later cells."""

from __future__ import annotations

import numpy as np

from bench.config.sweep import load_config
from bench.evaluation.costly import RunOutcome
from bench.evaluation.evaluate import Evaluation
from bench.evaluation.reference import Reference, load_reference, save_reference
from bench.running.results import read_records
from bench.sweep import run_sweep
from conftest import write_config


def test_reference_file_round_trip_and_rejections(tmp_path):
    rng = np.random.default_rng(0)
    logits = {name: rng.normal(size=(n, 3)).astype(np.float32) for name, n in (("forget", 4), ("retain", 6), ("test", 5))}
    labels = {name: rng.integers(0, 3, len(v)) for name, v in logits.items()}
    outcomes = [RunOutcome(rng.normal(size=4), 0.9, 0.8), RunOutcome(rng.normal(size=4), 0.7, 0.6)]
    reference = Reference(
        None, Evaluation(logits, labels, {"forget_acc": 0.25}, 1.5), {"forget_acc": 0.25, "mia_entropy": 0.5},
        rng.normal(size=(4, 3)), rng.normal(size=(4, 3)), 1.0, (7, False), outcomes,
    )
    path = tmp_path / "ref.npz"
    save_reference(path, "k1", reference)
    loaded = load_reference(path, "k1", None)
    for name in logits:
        assert np.array_equal(loaded.evaluation.logits[name], logits[name]) and np.array_equal(loaded.evaluation.labels[name], labels[name])
    assert loaded.metrics == reference.metrics and loaded.evaluation.metrics == {"forget_acc": 0.25}
    assert np.array_equal(loaded.random_forget_logits, reference.random_forget_logits)
    assert np.array_equal(loaded.original_forget_logits, reference.original_forget_logits)
    assert (loaded.original_forget_acc, loaded.relearn) == (1.0, (7, False))
    assert [(o.retain_acc, o.test_acc) for o in loaded.replica_outcomes] == [(0.9, 0.8), (0.7, 0.6)]
    assert np.array_equal(loaded.replica_outcomes[1].forget_confidence, outcomes[1].forget_confidence)
    assert load_reference(path, "another key", None) is None  # made for other models or another evaluation
    with np.load(path) as archive:  # readable and keyed right, but an entry missing (an older or foreign file)
        partial = {name: archive[name] for name in archive.files if name != "random_forget"}
    np.savez(tmp_path / "partial.npz", **partial)
    assert load_reference(tmp_path / "partial.npz", "k1", None) is None
    path.write_bytes(path.read_bytes()[:100])
    assert load_reference(path, "k1", None) is None  # truncated: computed again, never used
    assert load_reference(tmp_path / "absent.npz", "k1", None) is None


def test_an_added_method_loads_the_saved_reference(tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    run_sweep(load_config(write_config(tmp_path / "a.yaml", methods=["original", "retrain"])), out, cache, progress=False)
    files = sorted((out / "references").glob("*.npz"))
    assert len(files) == 2
    stamps = {path: path.stat().st_mtime_ns for path in files}
    methods = ["original", "retrain", {"name": "finetune", "params": {"epochs": 1}}]
    summary = run_sweep(load_config(write_config(tmp_path / "b.yaml", methods=methods)), out, cache, progress=False)
    assert summary.ran == 2 and summary.failed == []
    assert {path: path.stat().st_mtime_ns for path in files} == stamps  # loaded, not computed and written again
    # the loaded reference gives the same comparisons as a freshly computed one
    fresh = tmp_path / "fresh"
    run_sweep(load_config(write_config(tmp_path / "b.yaml", methods=methods)), fresh, cache, progress=False)
    added = {r["cell"]: r["metrics"] for r in read_records(out) if r["method"] == "finetune"}
    again = {r["cell"]: r["metrics"] for r in read_records(fresh) if r["method"] == "finetune"}
    for cell, metrics in added.items():
        for name in ("js_retrain", "avg_gap", "zrf", "kl_retrain", "weight_dist", "pred_dist_js"):
            assert metrics[name] == again[cell][name], (cell, name)
