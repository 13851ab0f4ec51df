"""The summary's statistics: methods ranked by one objective with groups the data cannot
tell apart, the seeds that would separate two of them, and a proposed method's claims
checked against each baseline. Pure functions of per-seed values (no torch).

Values come as one :class:`pandas.Series` per method, indexed by seed: the seeds of one
(dataset, scenario) pair up across methods (:mod:`bench.report.stats`), so every
comparison is a paired test over the seeds both methods have.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as scipy_stats

from bench.report.stats import holm, paired_test, t_interval

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def paired(a: pd.Series, b: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The two methods' values on the seeds both have, in seed order."""
    seeds = sorted(set(a.dropna().index) & set(b.dropna().index))
    return a.loc[seeds].to_numpy(dtype=float), b.loc[seeds].to_numpy(dtype=float)


def pairwise_differences(values: dict[str, pd.Series], alpha: float) -> tuple[set[frozenset[str]], pd.DataFrame]:
    """Every pair of methods tested (paired over seeds, :func:`bench.report.stats.paired_test`),
    Holm-corrected across all pairs; the pairs whose corrected p is below ``alpha``, and the
    tests as a frame (method_a, method_b, n_pairs, p, p_holm)."""
    rows = []
    for a, b in itertools.combinations(values, 2):
        test = paired_test(*paired(values[a], values[b]))
        rows.append({"method_a": a, "method_b": b, "n_pairs": test.n_pairs, "p": test.p})
    frame = pd.DataFrame(rows, columns=["method_a", "method_b", "n_pairs", "p"])
    frame["p_holm"] = holm(frame["p"].to_numpy()) if len(frame) else []
    different = {frozenset((r.method_a, r.method_b)) for r in frame.itertuples() if np.isfinite(r.p_holm) and r.p_holm < alpha}
    return different, frame


def letter_display(order: list[str], different: set[frozenset[str]]) -> dict[str, str]:
    """A compact letter display (Piepho 2004, insert-absorb): two methods share a letter
    exactly when the tests could not tell them apart. ``order`` (best first) decides which
    group gets ``a``: the one holding the best method."""
    groups: list[set[str]] = [set(order)]
    for pair in sorted(different, key=lambda p: sorted(order.index(m) for m in p)):
        i, j = sorted(pair, key=order.index)
        split = []
        for group in groups:
            split.extend([group - {i}, group - {j}] if i in group and j in group else [group])
        groups = [g for g in split if not any(g < other for other in split)]  # absorb subsets
        groups = [g for k, g in enumerate(groups) if g not in groups[:k]]
    groups.sort(key=lambda g: min(order.index(m) for m in g))
    letters = {m: "" for m in order}
    for letter, group in zip(itertools.cycle(LETTERS), groups):
        for method in group:
            letters[method] += letter
    return letters


def seeds_to_separate(differences: np.ndarray, alpha: float = 0.05, power: float = 0.8, most: int = 1000) -> float:
    """How many seeds a two-sided paired t-test at ``alpha`` needs to find a mean paired
    difference as large as the observed one with probability ``power``, if the differences
    spread as observed (the noncentral t; Cohen 1988, ch. 2). NaN with fewer than 2
    differences; inf when they are all zero or more than ``most`` seeds would be needed; the
    observed count when their spread is zero."""
    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return float("nan")
    mean, sd = abs(d.mean()), d.std(ddof=1)
    if mean == 0:
        return float("inf")
    if sd == 0:
        return float(len(d))
    effect = mean / sd
    for n in range(2, most + 1):
        critical = scipy_stats.t.ppf(1 - alpha / 2, n - 1)
        shift = effect * np.sqrt(n)
        reached = scipy_stats.nct.sf(critical, n - 1, shift) + scipy_stats.nct.cdf(-critical, n - 1, shift)
        if reached >= power:
            return float(n)
    return float("inf")


def rank_methods(values: dict[str, pd.Series], alpha: float = 0.05, confidence: float = 0.95) -> pd.DataFrame:
    """The methods ranked by their mean (lower is better), with the seeds counted, a
    Student-t interval of the mean, and the letters of :func:`letter_display` from every
    pairwise test (Holm-corrected). Methods without a value come last, unranked."""
    means = {m: float(v.dropna().mean()) if len(v.dropna()) else float("nan") for m, v in values.items()}
    order = sorted(values, key=lambda m: (not np.isfinite(means[m]), means[m] if np.isfinite(means[m]) else 0.0))
    ranked = [m for m in order if np.isfinite(means[m])]
    different, _ = pairwise_differences({m: values[m] for m in ranked}, alpha)
    letters = letter_display(ranked, different)
    rows = []
    for rank, method in enumerate(order, start=1):
        series = values[method].dropna()
        low, high = t_interval(series.to_numpy(), confidence)
        rows.append({
            "method": method, "rank": rank if method in letters else np.nan, "n_seeds": len(series),
            "mean": means[method], "low": low, "high": high, "letters": letters.get(method, ""),
        })
    return pd.DataFrame(rows, columns=["method", "rank", "n_seeds", "mean", "low", "high", "letters"])


@dataclass(frozen=True)
class Claim:
    """One measure of a claim: how it is read off the records and which way is better."""

    name: str
    metric: str
    higher_is_better: bool
    against_retrain: bool = False  # compare |metric − retrain's| (closer to retraining is better)


# The seed paper's claims: FC+ALB beats its baselines on retain accuracy, time and prediction
# distribution while forgetting as well as retraining does; test accuracy is the utility a
# reader checks beside them.
CLAIMS = (
    Claim("retain accuracy", "retain_acc", higher_is_better=True),
    Claim("test accuracy", "test_acc", higher_is_better=True),
    Claim("forgetting (|forget acc. − retrain's|)", "forget_acc", higher_is_better=False, against_retrain=True),
    Claim("prediction distribution (JS to retrain's)", "pred_dist_js", higher_is_better=False),
    Claim("time", "time_s", higher_is_better=False),
)


def claim_values(metric_values: pd.Series, retrain: pd.Series | None, claim: Claim) -> pd.Series:
    """The per-seed values a claim compares: the metric itself, or its distance to
    retraining's on the same seed."""
    if not claim.against_retrain:
        return metric_values.dropna()
    if retrain is None:
        return pd.Series(dtype=float)
    seeds = sorted(set(metric_values.dropna().index) & set(retrain.dropna().index))
    return (metric_values.loc[seeds] - retrain.loc[seeds]).abs()


def check_claims(
    values: dict[str, dict[str, pd.Series]], proposed: str, baselines: list[str], alpha: float = 0.05,
    claims: tuple[Claim, ...] = CLAIMS,
) -> pd.DataFrame:
    """The proposed method against each baseline on each claim: the mean paired difference
    (oriented so that a positive effect favours the proposed method), the paired test's p,
    Holm-corrected across every (baseline, claim) of the group, and the verdict: ``better``,
    ``worse`` or ``not distinguishable`` (corrected p ≥ ``alpha``, or fewer than 2 pairs).
    ``values[metric][method]`` holds each method's per-seed values; ``retrain`` is read from
    it for the claims measured against retraining."""
    rows = []
    for baseline in baselines:
        for claim in claims:
            by_method = values.get(claim.metric, {})
            retrain = by_method.get("retrain")
            ours = claim_values(by_method.get(proposed, pd.Series(dtype=float)), retrain, claim)
            theirs = claim_values(by_method.get(baseline, pd.Series(dtype=float)), retrain, claim)
            a, b = paired(ours, theirs)
            test = paired_test(a, b)
            sign = 1.0 if claim.higher_is_better else -1.0
            effect = float(sign * (a - b).mean()) if len(a) else float("nan")
            rows.append({"baseline": baseline, "claim": claim.name, "metric": claim.metric, "n_pairs": test.n_pairs,
                         "proposed_mean": float(a.mean()) if len(a) else np.nan,
                         "baseline_mean": float(b.mean()) if len(b) else np.nan, "effect": effect, "p": test.p})
    frame = pd.DataFrame(rows, columns=["baseline", "claim", "metric", "n_pairs", "proposed_mean", "baseline_mean", "effect", "p"])
    frame["p_holm"] = holm(frame["p"].to_numpy()) if len(frame) else []
    frame["verdict"] = [
        ("better" if r.effect > 0 else "worse") if np.isfinite(r.p_holm) and r.p_holm < alpha else "not distinguishable"
        for r in frame.itertuples()
    ]
    return frame


def claim_lines(checked: pd.DataFrame, claims: tuple[Claim, ...] = CLAIMS) -> list[str]:
    """One line per claim: against how many baselines the proposed method is better, not
    distinguishable, and worse, naming the ones where it is worse."""
    lines = []
    for claim in claims:
        rows = checked[checked["claim"] == claim.name]
        if rows.empty:
            continue
        counts = rows["verdict"].value_counts()
        worse = rows.loc[rows["verdict"] == "worse", "baseline"].tolist()
        lines.append(
            f"{claim.name}: better than {counts.get('better', 0)} of {len(rows)} baselines, not distinguishable from "
            f"{counts.get('not distinguishable', 0)}, worse than {counts.get('worse', 0)}"
            + (f" ({', '.join(worse)})" if worse else "")
        )
    return lines
