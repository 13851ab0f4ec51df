"""Forgetting scenarios: invariants of the index sets, stable hashes, clear errors."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from bench.core.errors import UserError
from bench.data.splits import index_sha256, load_split, make_split, parse_scenario, save_split

LABELS = torch.arange(1000) % 10


def check_partition(split, n):
    forget, retain = set(split.forget.tolist()), set(split.retain.tolist())
    assert not forget & retain
    assert forget | retain == set(range(n))
    assert split.forget.tolist() == sorted(forget) and split.retain.tolist() == sorted(retain)


def test_class_scenario_forgets_exactly_that_class():
    split = make_split(parse_scenario("class:3", 10), LABELS, seed=0)
    check_partition(split, 1000)
    assert split.forget.tolist() == list(range(3, 1000, 10))
    assert make_split(parse_scenario("class:3", 10), LABELS, seed=5).forget_sha256 == split.forget_sha256


def test_random_scenario_is_seeded_and_sized():
    scenario = parse_scenario("random:0.1", 10)
    a, b, c = (make_split(scenario, LABELS, seed) for seed in (0, 0, 1))
    check_partition(a, 1000)
    assert len(a.forget) == 100
    assert a.forget_sha256 == b.forget_sha256 and a.retain_sha256 == b.retain_sha256
    assert a.forget_sha256 != c.forget_sha256


def test_index_hash_is_sha256_of_little_endian_int64():
    expected = hashlib.sha256(np.array([0, 1, 2], dtype="<i8").tobytes()).hexdigest()
    assert index_sha256(torch.tensor([0, 1, 2])) == expected


def test_split_round_trips_and_a_changed_file_is_rejected(tmp_path):
    split = make_split(parse_scenario("random:0.25", 10), LABELS, seed=3)
    path = tmp_path / "split.safetensors"
    save_split(path, split)
    loaded = load_split(path, split.forget_sha256)
    assert torch.equal(loaded.forget, split.forget) and torch.equal(loaded.retain, split.retain)
    assert load_split(path, "0" * 64) is None
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 1
    path.write_bytes(bytes(raw))
    assert load_split(path, split.forget_sha256) is None


@pytest.mark.parametrize(
    "spec, message",
    [
        ("class:10", "class must be an integer in 0..9"),
        ("class:-1", "class must be an integer in 0..9"),
        ("class:x", "class must be an integer in 0..9"),
        ("random:0", r"fraction must be a number in \(0, 1\)"),
        ("random:1", r"fraction must be a number in \(0, 1\)"),
        ("random:abc", r"fraction must be a number in \(0, 1\)"),
        ("subclass:3", "unknown kind 'subclass'; allowed: class:<k>, random:<fraction>"),
    ],
)
def test_impossible_specs_are_rejected(spec, message):
    with pytest.raises(UserError, match=message):
        parse_scenario(spec, 10)


def test_spec_and_slug():
    assert parse_scenario("random:0.10", 10).spec == "random:0.1"
    assert parse_scenario("class:3", 10).slug == "class3"
