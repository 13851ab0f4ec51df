"""The Ray backend against the local one, on a real local Ray instance, and sweeps killed at
random moments (both backends) that a rerun finishes without losing or corrupting anything."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

from bench.config.sweep import load_config
from bench.running.ray_backend import submission_window, task_options
from bench.running.results import COST_METRICS, read_records
from bench.core.store import load_verified, read_metadata
from bench.sweep import run_sweep
from conftest import ROOT, require_tool, run_module, write_config

KEY = ["dataset", "scenario", "seed", "request", "method", "metric"]
METHODS = ["original", "retrain", {"name": "finetune", "params": {"epochs": 1}}, "fcalb", "amnesiac_undo"]


def comparable(results_csv) -> pd.DataFrame:
    """results.csv without the columns that measure the machine (time, memory)."""
    table = pd.read_csv(results_csv)
    table = table[~table["metric"].isin(COST_METRICS)]
    return table.sort_values(KEY).reset_index(drop=True)[[*KEY, "status", "value"]]


@pytest.fixture
def ray_instance():
    require_tool(importlib.util.find_spec("ray") is not None, "ray (the dev extra)")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local")
    config = load_config(write_config(tmp / "c.yaml", seeds=[0, 1], methods=METHODS))
    run_sweep(config, tmp / "out", tmp / "cache", progress=False)
    return config, tmp / "out"


def test_ray_backend_gives_the_local_results(ray_instance, local_sweep, tmp_path):
    config, local_out = local_sweep
    summary = run_sweep(config, tmp_path / "out", tmp_path / "cache", progress=False, backend="ray")
    assert summary.ran == 20 and summary.failed == []
    local, remote = comparable(local_out / "results.csv"), comparable(tmp_path / "out" / "results.csv")
    pd.testing.assert_frame_equal(local, remote)  # every metric bit for bit: same models, same thread count
    # shared work once: 5 methods x 2 scenarios x 2 seeds train 2 x (1 original + 2 retrained) models, not one per cell
    for cache in (local_out.parent / "cache", tmp_path / "cache"):
        assert len(list((cache / "models").glob("*.safetensors"))) == 6
    threads = {r["env"]["torch_threads"] for r in read_records(tmp_path / "out")}
    assert len(threads) == 1 and threads == {r["env"]["torch_threads"] for r in read_records(local_out)}
    # cells finish in grid order (seed, scenario, method), none more than the submission window ahead
    window = submission_window(ray_instance, task_options(ray_instance, config))
    names = [m if isinstance(m, str) else m["name"] for m in METHODS]
    grid = [(seed, scenario, name) for seed in config.seeds for scenario in config.scenarios for name in names]
    finished = sorted(read_records(tmp_path / "out"), key=lambda r: r["finished_at"])
    ahead = [grid.index((r["seed"], r["scenario"], r["method"])) - rank for rank, r in enumerate(finished)]
    assert window == 2 and max(ahead) < window, ahead
    # a finished sweep on Ray skips every cell, like the local backend
    again = run_sweep(config, tmp_path / "out", tmp_path / "cache", progress=False, backend="ray")
    assert (again.ran, again.skipped) == (0, 20)


def test_ray_backend_runs_sequences_and_subpopulations_as_the_local_backend(ray_instance, tmp_path):
    """Every request's metrics bit for bit, and each request's retrained model trained once."""
    methods = ["retrain", {"name": "finetune", "params": {"epochs": 1}}]
    config = load_config(write_config(tmp_path / "c.yaml", scenarios=["seq:2:random:0.05", "subclass:3:0"], methods=methods))
    run_sweep(config, tmp_path / "local", tmp_path / "cache_local", progress=False)
    summary = run_sweep(config, tmp_path / "ray", tmp_path / "cache_ray", progress=False, backend="ray")
    assert summary.ran == 4 and summary.failed == []
    local, remote = comparable(tmp_path / "local" / "results.csv"), comparable(tmp_path / "ray" / "results.csv")
    assert sorted(set(local["request"])) == [1, 2]
    pd.testing.assert_frame_equal(local, remote)
    for cache in ("cache_local", "cache_ray"):  # 1 original, 2 retrained for the requests, 1 for the subpopulation
        assert len(list((tmp_path / cache / "models").glob("*.safetensors"))) == 4


def test_ray_backend_joins_a_running_cluster(local_sweep, tmp_path):
    """--address: a cluster started apart with ``ray start`` (a head and a second node, two
    raylets as on two machines) runs the sweep over both nodes, with the local results."""
    require_tool(importlib.util.find_spec("ray") is not None, "ray (the dev extra)")
    ray_cli = str(Path(sys.executable).parent / "ray")
    port = 6400 + os.getpid() % 500
    short = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # Ray's socket paths must stay under 107 bytes
    env = {**os.environ, "RAY_TMPDIR": short, "RAY_AUTH_MODE": "disabled"}  # a token of its own would be elsewhere
    start = subprocess.run([ray_cli, "start", "--head", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=2",
                            "--include-dashboard=false", "--disable-usage-stats"], capture_output=True, text=True, env=env, timeout=120)
    assert start.returncode == 0, start.stderr[-2000:]
    try:
        second = subprocess.run([ray_cli, "start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1",
                                 "--num-cpus=2", "--disable-usage-stats"], capture_output=True, text=True, env=env, timeout=120)
        assert second.returncode == 0, second.stderr[-2000:]
        config, local_out = local_sweep
        result = run_module("bench.sweep", "--config", str(local_out.parent / "c.yaml"), "--out", str(tmp_path / "out"),
                            "--cache", str(tmp_path / "cache"), "--backend", "ray", "--address", f"127.0.0.1:{port}",
                            "--no-progress", env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        assert "20 cells run, 0 already finished, 0 failed" in result.stdout
        pd.testing.assert_frame_equal(comparable(local_out / "results.csv"), comparable(tmp_path / "out" / "results.csv"))
        nodes = {r["env"]["ray_node"] for r in read_records(tmp_path / "out")}
        assert len(nodes) == 2  # each task asks for 2 CPUs, each node has 2: cells ran on both nodes
    finally:
        stop_cluster(short)
        shutil.rmtree(short, ignore_errors=True)


def stop_cluster(temp_dir: str) -> None:
    """End the processes of the cluster whose Ray folder is ``temp_dir``, with their children,
    and no other: ``ray stop`` ends every Ray instance of the machine, a user's running job's too
    (it killed a tuning run's local instance while this suite ran beside it)."""
    ours = [p for p in psutil.process_iter(["cmdline"]) if any(temp_dir in part for part in p.info["cmdline"] or [])]
    family = set(ours)
    for process in ours:
        try:
            family.update(process.children(recursive=True))
        except psutil.NoSuchProcess:
            pass
    for process in family:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(list(family), timeout=30)


def test_ray_backend_errors(tmp_path):
    config = write_config(tmp_path / "c.yaml")
    result = run_module("bench.sweep", "--config", str(config), "--address", "127.0.0.1:6379", "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "--address is for --backend ray" in result.stderr
    assert not (tmp_path / "o").exists()
    with socket.socket() as probe:  # a port nothing listens on: Ray alone would retry it for ever
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    result = run_module("bench.sweep", "--config", str(config), "--backend", "ray", "--address", f"127.0.0.1:{free}",
                        "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr[-2000:]
    assert f"--address '127.0.0.1:{free}': cannot join a Ray cluster there (nothing answers" in result.stderr
    assert not (tmp_path / "o").exists()


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL the sweep and everything it started (a local Ray instance included)."""
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    os.killpg(process.pid, signal.SIGKILL)
    for child in descendants:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
    process.wait()
    psutil.wait_procs(descendants, timeout=10)


def assert_nothing_half_written(out, cache) -> dict[str, str]:
    """Every record reads, every split and cached model verifies; returns cell -> finished_at."""
    records = read_records(out)  # raises on a truncated or malformed record
    for path in [*(out / "splits").glob("*.safetensors"), *(cache / "models").glob("*.safetensors")]:
        assert load_verified(path, read_metadata(path)["key"]) is not None, path  # content matches its checksum
    return {r["cell"]: r["finished_at"] for r in records}


@pytest.mark.parametrize("backend", ["local", "ray"])
def test_a_killed_sweep_resumes_without_loss_or_corruption(backend, tmp_path):
    if backend == "ray":
        require_tool(importlib.util.find_spec("ray") is not None, "ray (the dev extra)")
    config = write_config(tmp_path / "c.yaml", methods=METHODS)
    out, cache = tmp_path / "out", tmp_path / "cache"
    command = [sys.executable, "-m", "bench.sweep", "--config", str(config), "--out", str(out), "--cache", str(cache),
               "--no-progress", "--backend", backend]
    env = {**os.environ, "UNLEARN_CACHE": str(cache)}
    rng = np.random.default_rng(5 if backend == "local" else 6)
    # kill 1: at a random moment of the first seconds (start-up, training); kills 2 and 3: after a
    # random number of cells has finished, plus a random fraction of the shortest time this run
    # took between two records (a second at most), so that the kills land mid-sweep whatever this
    # machine's speed and load
    plan = [(0, rng.uniform(1.0, 5.0)), (int(rng.integers(1, 5)), rng.uniform(0, 1)), (int(rng.integers(5, 8)), rng.uniform(0, 1))]
    finished: dict[str, str] = {}
    counts = []
    for kill, (records_before, fraction) in enumerate(plan):
        process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        arrivals = [time.monotonic()]
        seen = len(list((out / "runs").glob("*.json")))
        while seen < records_before and time.monotonic() < deadline:
            time.sleep(0.02)
            now_seen = len(list((out / "runs").glob("*.json")))
            if now_seen > seen:
                arrivals.append(time.monotonic())
            seen = now_seen
        gaps = np.diff(arrivals[1:])
        time.sleep(fraction if kill == 0 else fraction * min(1.0, gaps.min() if len(gaps) else 1.0))
        kill_tree(process)
        now = assert_nothing_half_written(out, cache)
        assert all(now.get(cell) == at for cell, at in finished.items())  # no finished cell lost or run again
        finished = now
        counts.append(len(now))
    assert counts[-1] < 10, counts  # the last kill still left work to do
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    final = assert_nothing_half_written(out, cache)
    assert len(final) == 10 and all(final[cell] == at for cell, at in finished.items())
    reference = tmp_path / "reference"
    run_sweep(load_config(config), reference, tmp_path / "reference-cache", progress=False)
    pd.testing.assert_frame_equal(comparable(out / "results.csv"), comparable(reference / "results.csv"))
    assert json.loads((out / "runs" / "digits__class3__s0__finetune.json").read_text())["status"] == "ok"
