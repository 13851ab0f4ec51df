"""Forgetting scenarios: invariants of the index sets, stable hashes, clear errors."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from bench.core.errors import UserError
from bench.data.splits import (
    index_sha256, load_split, make_split, parse_scenario, request_classes, save_split, sequence_splits,
)

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
        ("subset:3", "unknown kind 'subset'; allowed: class:<k>, random:<fraction>, subclass:<k>:<j>"),
        ("subclass:3", r"expected subclass:<class>:<cluster>\[:<clusters>\]"),
        ("subclass:10:0", "class must be an integer in 0..9"),
        ("subclass:3:4", "cluster must be an integer in 0..3"),
        ("subclass:3:2:2", "cluster must be an integer in 0..1"),
        ("subclass:3:0:1", "clusters must be at least 2"),
        ("seq:0:class", "requests must be an integer of at least 1"),
        ("seq:x:class", "requests must be an integer of at least 1"),
        ("seq:10:class", "at most 9 class requests"),
        ("seq:4:random:0.25", r"4 disjoint requests of 0.25 each need requests x fraction < 1"),
        ("seq:2:subclass:3:0", "base 'subclass:3:0' unknown; allowed: class, random:<fraction>"),
        ("seq:2:random:2", r"fraction must be a number in \(0, 1\)"),
    ],
)
def test_impossible_specs_are_rejected(spec, message):
    with pytest.raises(UserError, match=message):
        parse_scenario(spec, 10)


def test_spec_and_slug():
    assert parse_scenario("random:0.10", 10).spec == "random:0.1"
    assert parse_scenario("class:3", 10).slug == "class3"
    assert parse_scenario("seq:4:random:0.025", 10).spec == "seq:4:random:0.025"
    assert parse_scenario("seq:4:random:0.025", 10).slug == "seq4-random0.025"
    assert parse_scenario("subclass:3:0", 10).slug == "subclass3-0"
    assert parse_scenario("subclass:3:0:4", 10).spec == "subclass:3:0"
    assert parse_scenario("subclass:3:1:5", 10).slug == "subclass3-1-5"
    assert parse_scenario("seq:3:class", 10).request_kind == "class"
    assert parse_scenario("subclass:3:1", 10).request_kind == "class"
    assert parse_scenario("seq:2:random:0.1", 10).request_kind == "random"


def test_sequential_requests_are_disjoint_seeded_and_cumulative():
    scenario = parse_scenario("seq:4:random:0.05", 10)
    splits = sequence_splits(scenario, LABELS, 10, seed=7)
    requests = [set(s.request.tolist()) for s in splits]
    assert [len(r) for r in requests] == [50, 50, 50, 50]
    assert all(not a & b for i, a in enumerate(requests) for b in requests[i + 1:])
    for i, split in enumerate(splits):
        check_partition(split, 1000)
        assert set(split.forget.tolist()) == set().union(*requests[: i + 1])  # the retrained reference never saw 1..i
    first = make_split(parse_scenario("random:0.05", 10), LABELS, seed=7)
    assert torch.equal(splits[0].forget, first.forget)  # request 1 is random:0.05's forget set at that seed
    again = sequence_splits(scenario, LABELS, 10, seed=7)
    assert all(torch.equal(a.forget, b.forget) for a, b in zip(splits, again))
    assert not torch.equal(sequence_splits(scenario, LABELS, 10, seed=8)[0].forget, splits[0].forget)


def test_class_sequences_forget_one_drawn_class_per_request():
    test_labels = torch.arange(100) % 10
    splits = sequence_splits(parse_scenario("seq:3:class", 10), LABELS, 10, seed=1, test_labels=test_labels)
    classes = request_classes(parse_scenario("seq:3:class", 10), 10, seed=1)
    assert len(set(classes)) == 3
    for i, split in enumerate(splits):
        assert set(LABELS[split.request].tolist()) == {classes[i]}
        assert set(LABELS[split.forget].tolist()) == set(classes[: i + 1])
        assert torch.equal(split.test_group, torch.isin(test_labels, torch.tensor(classes[: i + 1])))
