"""The report's first two tables: the summary (methods ranked by the sweep's objective, with
the groups the data cannot tell apart and their cost) and the claims check (the proposed
method against each baseline). Built from the records alone by :mod:`bench.report.ranking`."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.report.load import GROUP, Results
from bench.report.ranking import CLAIMS, check_claims, claim_lines, paired, rank_methods, seeds_to_separate
from bench.report.render import Cell, Table
from bench.report.tables import RETRAIN, ReportOptions, group_title, objective_of, seed_values, variants_of
from bench.report.tuning import TUNED_MARK, TUNED_SUFFIX, is_tuned

def _label(method: str) -> str:
    return method + (f" {TUNED_MARK}" if is_tuned(method) else "")


def _cost(results: Results, group: tuple, method: str) -> float:
    """Mean over seeds of the method's time as a multiple of retraining's: 1 / the record's
    own ``speedup`` (retraining's time over the method's, written by the cell)."""
    speedup = seed_values(results.matrix, group, method, "speedup").to_numpy(dtype=float)
    return float((1.0 / speedup).mean()) if len(speedup) else float("nan")


def summary_table(results: Results, options: ReportOptions) -> Table | None:
    """Per dataset and scenario, every method but retraining ranked by the objective (its
    gap to retraining, lower is better), the defaults and the tuned variants each a row."""
    objective = objective_of(results)
    if objective not in set(results.values["metric"]):
        return None
    rows, data, notes = [], [], []
    for group, cells in results.cells.groupby(GROUP, sort=False):
        methods = [m for m in dict.fromkeys(cells["method"]) if m != RETRAIN]
        values = {m: seed_values(results.matrix, group, m, objective) for m in methods}
        ranked = rank_methods(values, alpha=options.alpha, confidence=options.confidence)
        for r in ranked.itertuples():
            cost = _cost(results, group, r.method)
            interval = f"[{r.low:.3f}, {r.high:.3f}]" if np.isfinite(r.low) else "–"
            rows.append([Cell(group_title(group)), Cell("–" if np.isnan(r.rank) else str(int(r.rank))), Cell(_label(r.method)),
                         Cell(f"{r.mean:.3f}" if np.isfinite(r.mean) else "–", bold=r.letters.startswith("a")),
                         Cell(interval), Cell(r.letters or "–"), Cell(str(r.n_seeds)),
                         Cell(f"{cost:.2f}" if np.isfinite(cost) else "–")])
            data.append({**dict(zip(GROUP, group)), "objective": objective, **r._asdict(), "cost_vs_retrain": cost})
        ranked_ok = ranked.dropna(subset=["rank"])
        if len(ranked_ok) >= 2:
            first, second = ranked_ok["method"].iloc[0], ranked_ok["method"].iloc[1]
            a, b = paired(values[first], values[second])
            needed = seeds_to_separate(a - b, alpha=options.alpha)
            shared = set(ranked_ok["letters"].iloc[0]) & set(ranked_ok["letters"].iloc[1])
            verdict = "the data already separate them" if not shared else (
                f"about {int(needed)} seeds would separate them (a paired t-test at {options.alpha:g}, power 0.8, "
                "at their observed mean difference and spread, before any correction)" if np.isfinite(needed)
                else "their observed mean difference is too small for any practical number of seeds (over 1,000)")
            notes.append(f"{group_title(group)}: {sum(ranked_ok['letters'].str.contains('a'))} of {len(ranked_ok)} methods "
                         f"share the best group (a); top two {first} and {second}: {verdict}.")
    caption = (f"Each method's {objective} (its gap to retraining, lower is better), mean and "
               f"{options.confidence:.0%} t-interval over seeds; rank by mean; methods sharing a letter cannot be told "
               f"apart (paired tests over seeds, Holm-corrected across all pairs of a dataset and scenario, α = "
               f"{options.alpha:g}); cost: time as a multiple of retraining's. {TUNED_MARK}: {TUNED_SUFFIX}, tuned. "
               "Bold: the best group.")
    columns = ["Dataset / scenario", "Rank", "Method", objective, "Interval", "Group", "Seeds", "Cost (× retrain)"]
    return Table("summary", "Summary: closest to retraining, and which differences are real", caption, columns, rows,
                 pd.DataFrame(data), notes)


def contenders(methods: list[str], proposed: str, excluded: set[str]) -> list[str]:
    """One row per base method other than the references, the proposed method and its
    variants (``excluded``): its tuned variant where the sweep has one, else its defaults."""
    chosen: dict[str, str] = {}
    for method in methods:
        base = method[: -len(TUNED_SUFFIX)] if is_tuned(method) else method
        if base in (RETRAIN, "original", proposed) or base in excluded:
            continue
        if base not in chosen or is_tuned(method):
            chosen[base] = method
    return list(chosen.values())


def claim_text(verdict: str, effect: float, p_holm: float, n_pairs: int) -> str:
    """One cell of the claims check: the verdict with its effect and Holm's p; where fewer than
    two seeds pair up there is no test, and the cell says so rather than show p as nan."""
    if not np.isfinite(effect):
        return "–"
    if not np.isfinite(p_holm):
        return f"{verdict} ({effect:+.3g}; {n_pairs} paired seed{'s' if n_pairs != 1 else ''}, no test)"
    return f"{verdict} ({effect:+.3g}, p {p_holm:.2g})"


def claims_table(results: Results, options: ReportOptions) -> Table | None:
    """The proposed method (its tuned variant where the sweep has one) against each
    baseline on every claim: better, not distinguishable or worse, with the effect."""
    proposed = options.proposed
    if proposed is None:
        return None
    rows, frames, notes = [], [], []
    variants = [v[: -len(TUNED_SUFFIX)] if is_tuned(v) else v for v in variants_of(results, proposed)]
    for group, cells in results.cells.groupby(GROUP, sort=False):
        methods = list(dict.fromkeys(cells["method"]))
        ours = proposed + TUNED_SUFFIX if proposed + TUNED_SUFFIX in methods else proposed
        if ours not in methods:
            continue
        baselines = contenders(methods, proposed, set(variants))
        values = {c.metric: {m: seed_values(results.matrix, group, m, c.metric) for m in [*methods]} for c in CLAIMS}
        checked = check_claims(values, ours, baselines, alpha=options.alpha)
        frames.append(checked.assign(**dict(zip(GROUP, group)), proposed=ours))
        for baseline in baselines:
            part = checked[checked["baseline"] == baseline].set_index("claim")
            cells_ = [Cell(group_title(group)), Cell(_label(baseline))]
            for claim in CLAIMS:
                r = part.loc[claim.name]
                cells_.append(Cell(claim_text(r.verdict, r.effect, r.p_holm, r.n_pairs), bold=r.verdict == "better"))
            rows.append(cells_)
        notes += [f"{group_title(group)}, {ours}: {line}." for line in claim_lines(checked)]
    if not rows:
        return None
    caption = (f"{proposed} ({TUNED_SUFFIX} where tuned) against each baseline (its tuned variant where the sweep has "
               "one), paired over seeds: better, not distinguishable or worse (Holm-corrected across every baseline and "
               f"claim of a dataset and scenario, α = {options.alpha:g}); the effect is the mean difference, positive when "
               f"{proposed} is better (higher accuracy; lower forget-accuracy gap to retraining, prediction-distribution "
               "distance and time); p is Holm's.")
    columns = ["Dataset / scenario", "Baseline", *(c.name for c in CLAIMS)]
    return Table("claims", f"Claims check: {proposed} against each baseline", caption, columns, rows,
                 pd.concat(frames, ignore_index=True), notes)
