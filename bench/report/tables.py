"""The paper's tables, as numbers (tidy frames) and as formatted :class:`Table` objects.

One main table, one gap-to-retrain table and (when the sweep has variants of the
proposed method) one ablation table per dataset, model and scenario; one cost table
and one table of the cells that gave no result. Which value is "best" depends on the
metric: accuracy and membership inference should match the retrained model (the
behaviour exact unlearning gives), distances, gaps, time and memory should be low.
``retrain`` and ``original`` are references, not contenders: they are never bold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.report.load import GROUP, Results
from bench.report.palette import family_order, method_family
from bench.report.render import Cell, Table
from bench.report.stats import bootstrap_interval, holm, paired_test, t_interval
from bench.report.tuning import TUNED_MARK, TUNED_SUFFIX, is_tuned, tuned_note

MAIN_METRICS = ("forget_acc", "retain_acc", "test_acc", "mia_entropy", "js_retrain", "pred_dist_js", "avg_gap", "time_s")
GAP_METRICS = MAIN_METRICS[:-1]  # |time − retrain's time| says nothing the cost table does not
COST_METRICS = ("time_s", "speedup", "peak_mem_mib")
LABELS = {
    "forget_acc": "Forget acc.", "retain_acc": "Retain acc.", "test_acc": "Test acc.", "mia_entropy": "MIA",
    "js_retrain": "JS to retrain", "pred_dist_js": "Pred. dist. JS", "avg_gap": "Avg. gap", "time_s": "Time (s)",
    "speedup": "Speed-up", "peak_mem_mib": "Peak mem. (MiB)",
}
MATCH_RETRAIN = frozenset({
    "forget_acc", "retain_acc", "test_acc", "test_forget_class_acc", "test_rest_acc",
    "mia_entropy", "mia_conf_svc", "mia_mentr_svc", "mia_loss_cv", "mia_auc", "mia_tpr_1fpr",
})
HIGHER_IS_BETTER = frozenset({"speedup"})
REFERENCE_METHODS = ("retrain", "original")
RETRAIN = "retrain"
DEFAULT_OBJECTIVE = "avg_gap_auc"


def objective_of(results: Results) -> str:
    """The sweep's objective: its tuned file's, else ``avg_gap_auc`` (the tuner's default),
    else ``avg_gap`` for records older than it."""
    metrics = set(results.values["metric"])
    for name in [*(t.objective for t in results.tuned), DEFAULT_OBJECTIVE, "avg_gap"]:
        if name in metrics:
            return name
    return DEFAULT_OBJECTIVE


@dataclass(frozen=True)
class ReportOptions:
    """``proposed``: the method the paper proposes (last row, tested against, its variants
    form the ablation table); ``order``: the rows' order (unlisted methods follow in the
    sweep's order); ``interval``: ``"t"`` or ``"bootstrap"`` for the gap table."""

    proposed: str | None = None
    order: tuple[str, ...] = ()
    interval: str = "t"
    confidence: float = 0.95
    alpha: float = 0.05


def group_title(group: tuple) -> str:
    dataset, model, scenario = group
    return f"{dataset} ({model}), {scenario}"


def group_slug(group: tuple) -> str:
    return "__".join(str(part).replace(":", "-").replace("/", "-") for part in group)


def variants_of(results: Results, proposed: str | None) -> list[str]:
    """Other entries of the sweep that run the proposed method's class (its ablations)."""
    if proposed is None:
        return []
    classes = results.cells.loc[results.cells["method"] == proposed, "method_class"]
    if classes.empty:
        return []
    same = results.cells[(results.cells["method_class"] == classes.iloc[0])
                         & ~results.cells["method"].isin([proposed, proposed + TUNED_SUFFIX])]
    return list(dict.fromkeys(same["method"]))


def method_families(results: Results) -> dict[str, str]:
    """``{method: family}`` for every method of the results, from its class (tuned variants
    included); see :mod:`bench.report.palette`."""
    classes = results.cells.drop_duplicates("method").set_index("method")["method_class"]
    return {method: method_family(str(method_class)) for method, method_class in classes.items()}


def method_order(results: Results, options: ReportOptions, include_variants: bool = False) -> list[str]:
    """By family (references first, the proposed method's family last, the proposed method
    itself at the very end), the records' order (by name) within a family, each tuned
    variant right after its default; ``options.order`` overrides all of it."""
    methods = results.methods
    if options.order:
        listed = [m for m in options.order if m in methods]
        return listed + [m for m in methods if m not in listed]
    hidden = set() if include_variants else set(variants_of(results, options.proposed))
    proposed = [options.proposed, options.proposed + TUNED_SUFFIX] if options.proposed else []
    families = method_families(results)
    rank = {family: i for i, family in enumerate(family_order(families, options.proposed))}
    references = {m: i for i, m in enumerate(REFERENCE_METHODS)}
    bases = [m for m in methods if m not in proposed and m not in hidden and not is_tuned(m)]
    bases.sort(key=lambda m: (rank[families[m]], references.get(m, len(references))))
    ordered = [n for m in bases for n in (m, m + TUNED_SUFFIX) if n in methods] + [m for m in proposed if m in methods]
    return ordered + [m for m in methods if m not in ordered and m not in hidden]  # tuned variants whose default is absent


def group_cells(results: Results, group: tuple) -> pd.DataFrame:
    """The cells (records) of one (dataset, model, scenario)."""
    cells = results.cells
    return cells[(cells["dataset"] == group[0]) & (cells["model"] == group[1]) & (cells["scenario"] == group[2])]


def seed_values(matrix: pd.DataFrame, group: tuple, method: str, metric: str) -> pd.Series:
    """The values of one metric over seeds (index: seed), NaNs dropped."""
    try:
        part = matrix.loc[(*group, method)]  # index: dataset, model, scenario, method, seed
    except KeyError:
        return pd.Series(dtype=float)
    if metric not in part.columns:
        return pd.Series(dtype=float)
    return part[metric].dropna()


def _best(means: dict[str, float], metric: str, retrain_mean: float) -> set[str]:
    """The contenders whose mean is best for ``metric`` (ties all win)."""
    contenders = {m: v for m, v in means.items() if m not in REFERENCE_METHODS and np.isfinite(v)}
    if not contenders:
        return set()
    if metric in MATCH_RETRAIN:
        if not np.isfinite(retrain_mean):
            return set()
        score = {m: abs(v - retrain_mean) for m, v in contenders.items()}
    elif metric in HIGHER_IS_BETTER:
        score = {m: -v for m, v in contenders.items()}
    else:
        score = dict(contenders)
    low = min(score.values())
    return {m for m, s in score.items() if np.isclose(s, low, rtol=1e-9, atol=1e-12)}


def significance(results: Results, options: ReportOptions, metrics: tuple[str, ...] = MAIN_METRICS) -> pd.DataFrame:
    """Paired tests over seeds of every method against retrain and against the proposed
    method, per metric; Holm-corrected across all tests of one (dataset, model, scenario)."""
    matrix = results.matrix
    rows = []
    for group, cells in results.cells.groupby(GROUP, sort=False):
        family = []
        for against in dict.fromkeys(a for a in (RETRAIN, options.proposed) if a is not None):
            for method in dict.fromkeys(cells["method"]):
                if method == against:
                    continue
                for metric in metrics:
                    ours, theirs = seed_values(matrix, group, method, metric), seed_values(matrix, group, against, metric)
                    seeds = sorted(set(ours.index) & set(theirs.index))
                    test = paired_test(ours.loc[seeds].to_numpy(), theirs.loc[seeds].to_numpy())
                    family.append({
                        **dict(zip(GROUP, group)), "metric": metric, "method": method, "against": against,
                        "test": test.test, "n_pairs": test.n_pairs, "statistic": test.statistic, "p": test.p,
                    })
        adjusted = holm([row["p"] for row in family])
        for row, p_holm in zip(family, adjusted):
            row.update(p_holm=p_holm, significant=bool(np.isfinite(p_holm) and p_holm < options.alpha))
        rows.extend(family)
    columns = [*GROUP, "metric", "method", "against", "test", "n_pairs", "statistic", "p", "p_holm", "significant"]
    return pd.DataFrame(rows, columns=columns)


def _marks(sig: pd.DataFrame, group: tuple, method: str, metric: str, proposed: str | None) -> str:
    if sig.empty:
        return ""
    hits = sig[
        (sig["dataset"] == group[0]) & (sig["model"] == group[1]) & (sig["scenario"] == group[2])
        & (sig["method"] == method) & (sig["metric"] == metric) & sig["significant"]
    ]
    against = set(hits["against"])
    return ("†" if RETRAIN in against else "") + ("‡" if proposed is not None and proposed in against else "")


def format_value(metric: str, value: float) -> str:
    if not np.isfinite(value):
        return "–" if np.isnan(value) else ("∞" if value > 0 else "−∞")
    if metric.endswith("_s") or metric == "speedup":
        return f"{value:.3g}"
    if metric.endswith("_mib"):
        return f"{value:.0f}"
    text = f"{value:.3f}"
    return "0.000" if text == "-0.000" else text


def format_mean_std(metric: str, mean: float, std: float) -> str:
    if not np.isfinite(std):
        return format_value(metric, mean)
    return f"{format_value(metric, mean)} ± {format_value(metric, std)}"


def _counts(results: Results, group: tuple, method: str) -> tuple[int, int]:
    """(ok cells, seeds of the group) of one method: a failed, not-applicable or missing
    cell makes the first smaller than the second."""
    cells = group_cells(results, group)
    return int(((cells["method"] == method) & (cells["status"] == "ok")).sum()), cells["seed"].nunique()


def _status_text(results: Results, group: tuple, method: str) -> str:
    cells = group_cells(results, group)
    mine = cells[cells["method"] == method]
    return ", ".join(sorted(set(mine["status"]) - {"ok"})) or "missing"


def method_cell(method: str) -> Cell:
    """A row's label; a tuned variant carries the tuned mark."""
    return Cell(method, marks=TUNED_MARK if is_tuned(method) else "")


def tuned_notes(results: Results, methods: list[str]) -> list[str]:
    return [tuned_note(results.tuned)] if any(is_tuned(m) for m in methods) else []


def metric_table(
    results: Results, group: tuple, methods: list[str], metrics: tuple[str, ...], sig: pd.DataFrame,
    options: ReportOptions, name: str, title: str, caption: str,
) -> Table:
    """Rows = methods, columns = metrics, cells = mean ± std over seeds, best in bold,
    significance marks; a method with no ok cell keeps its row, saying why."""
    matrix = results.matrix
    stats = {}
    for method in methods:
        for metric in metrics:
            values = seed_values(matrix, group, method, metric)
            stats[method, metric] = (values.mean() if len(values) else np.nan, values.std(ddof=1) if len(values) > 1 else np.nan, len(values))
    rows, data = [], []
    for metric in metrics:
        retrain_mean = stats.get((RETRAIN, metric), (np.nan,))[0] if RETRAIN in methods else seed_values(matrix, group, RETRAIN, metric).mean()
        best = _best({m: stats[m, metric][0] for m in methods}, metric, retrain_mean)
        for method in methods:
            mean, std, n = stats[method, metric]
            marks = _marks(sig, group, method, metric, options.proposed)
            data.append({
                **dict(zip(GROUP, group)), "method": method, "metric": metric, "mean": mean, "std": std, "n": n,
                "best": method in best, "differs_from_retrain": "†" in marks, "differs_from_proposed": "‡" in marks,
            })
    frame = pd.DataFrame(data)
    for method in methods:
        ok, total = _counts(results, group, method)
        row = [method_cell(method)]
        if ok == 0:
            row += [Cell(_status_text(results, group, method)) for _ in metrics]
        for metric in metrics if ok else ():
            entry = frame[(frame["method"] == method) & (frame["metric"] == metric)].iloc[0]
            text = format_mean_std(metric, entry["mean"], entry["std"])
            if 0 < entry["n"] < ok:
                text += f" (n={entry['n']})"
            marks = ("†" if entry["differs_from_retrain"] else "") + ("‡" if entry["differs_from_proposed"] else "")
            row.append(Cell(text, bold=bool(entry["best"]), marks=marks))
        row.append(Cell(str(ok) if ok == total else f"{ok} of {total}"))
        rows.append(row)
    return Table(name, title, caption, ["Method", *(LABELS.get(m, m) for m in metrics), "Seeds"], rows, frame)


def significance_note(options: ReportOptions, tested: bool) -> str:
    if not tested:
        return "No significance marks: fewer than 2 seeds."
    against = f"; ‡ differs from {options.proposed}" if options.proposed else ""
    return (
        f"† differs from retrain{against} (paired over seeds: Wilcoxon signed-rank with ≥ 6 pairs, t-test otherwise; "
        f"Holm-corrected across all tests of this dataset and scenario; α = {options.alpha:g})."
    )


BEST_NOTE = "Bold: best unlearning method (closest to retrain for accuracy and MIA, lowest otherwise; retrain and original are references)."


def main_table(results: Results, group: tuple, sig: pd.DataFrame, options: ReportOptions) -> Table:
    present = set(group_cells(results, group)["method"])
    methods = [m for m in method_order(results, options) if m in present]
    tested = bool((sig["n_pairs"] >= 2).any()) if not sig.empty else False
    table = metric_table(
        results, group, methods, MAIN_METRICS, sig, options, f"main__{group_slug(group)}", group_title(group),
        "Mean ± std over seeds; accuracies and MIA in [0, 1], time in seconds.",
    )
    table.notes = [BEST_NOTE, significance_note(options, tested), *tuned_notes(results, methods)]
    hidden = [v for v in variants_of(results, options.proposed) if v not in methods]
    if hidden:
        table.notes.append(f"Variants of {options.proposed} ({', '.join(hidden)}) are in the ablation table.")
    return table


def ablation_table(results: Results, group: tuple, sig: pd.DataFrame, options: ReportOptions) -> Table | None:
    """The proposed method and its variants (entries running the same method class), with
    the hyper-parameters each variant changes; ``None`` when the sweep has no variants."""
    variants = variants_of(results, options.proposed)
    in_group = set(group_cells(results, group)["method"])
    variants = [v for v in variants if v in in_group]
    if not variants or options.proposed not in in_group:
        return None
    methods = [m for m in (RETRAIN,) if m in in_group] + [options.proposed, *variants]
    table = metric_table(
        results, group, methods, MAIN_METRICS, sig, options, f"ablation__{group_slug(group)}",
        f"Ablation of {options.proposed}: {group_title(group)}", "Mean ± std over seeds.",
    )
    params = {r["method"]: r.get("params") or {} for r in results.records}
    default = params.get(options.proposed, {})
    for row in table.rows:
        method = row[0].text
        changed = {k: v for k, v in params.get(method, {}).items() if method != RETRAIN and default.get(k) != v}
        row.insert(1, Cell(", ".join(f"{k}={v}" for k, v in changed.items()) or ("–" if method == RETRAIN else "defaults")))
    table.columns.insert(1, "Changes")
    table.notes = [BEST_NOTE.replace("unlearning method", "variant"), significance_note(options, not sig.empty), *tuned_notes(results, methods)]
    return table


def gap_table(results: Results, group: tuple, options: ReportOptions) -> Table:
    """|method − retrain| per seed (paired on the seed's retrained model), its mean and a
    confidence interval over seeds (Student t, or a percentile bootstrap)."""
    matrix = results.matrix
    present = set(group_cells(results, group)["method"])
    methods = [m for m in method_order(results, options, include_variants=True) if m != RETRAIN and m in present]
    interval = t_interval if options.interval == "t" else bootstrap_interval
    data = []
    for method in methods:
        for metric in GAP_METRICS:
            ours, theirs = seed_values(matrix, group, method, metric), seed_values(matrix, group, RETRAIN, metric)
            seeds = sorted(set(ours.index) & set(theirs.index))
            gaps = np.abs(ours.loc[seeds].to_numpy() - theirs.loc[seeds].to_numpy())
            low, high = interval(gaps, options.confidence)
            data.append({
                **dict(zip(GROUP, group)), "method": method, "metric": metric, "mean_gap": gaps.mean() if len(gaps) else np.nan,
                "ci_low": low, "ci_high": high, "n": len(gaps), "interval": options.interval, "confidence": options.confidence,
            })
    frame = pd.DataFrame(data, columns=[*GROUP, "method", "metric", "mean_gap", "ci_low", "ci_high", "n", "interval", "confidence"])
    rows = []
    for method in methods:
        ok, total = _counts(results, group, method)
        row = [method_cell(method)]
        for metric in GAP_METRICS:
            entry = frame[(frame["method"] == method) & (frame["metric"] == metric)].iloc[0]
            contenders = frame[(frame["metric"] == metric) & ~frame["method"].isin(REFERENCE_METHODS)]["mean_gap"]
            best = method not in REFERENCE_METHODS and np.isfinite(entry["mean_gap"]) and np.isclose(entry["mean_gap"], contenders.min())
            if entry["n"] == 0:
                text = _status_text(results, group, method) if ok == 0 else "–"
            elif np.isfinite(entry["ci_low"]):
                text = f"{format_value(metric, entry['mean_gap'])} [{format_value(metric, entry['ci_low'])}, {format_value(metric, entry['ci_high'])}]"
            else:
                text = format_value(metric, entry["mean_gap"])
            row.append(Cell(text, bold=bool(best)))
        row.append(Cell(str(ok) if ok == total else f"{ok} of {total}"))
        rows.append(row)
    kind = "Student t" if options.interval == "t" else "percentile bootstrap"
    return Table(
        f"gap__{group_slug(group)}", f"Gap to retrain: {group_title(group)}",
        f"Mean over seeds of |method − retrain| (same seed's retrained model) with its {options.confidence:.0%} {kind} interval.",
        ["Method", *(LABELS.get(m, m) for m in GAP_METRICS), "Seeds"], rows, frame,
        notes=["Bold: smallest mean gap among unlearning methods. JS, prediction-distribution JS and average gap are already distances to retrain.",
               *tuned_notes(results, methods)],
    )
