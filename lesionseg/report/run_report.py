"""The report of a training run: one ``index.html`` with its PNG figures beside it.

Sections: configuration (with the preset that ran); the time budget (planned against actual seconds, per
model, when the run was given ``--minutes``); per-fold table with mean ± sd; per-case validation table and Dice bars;
difficulty distributions with the curriculum group boundaries; training loss and validation Dice curves;
performance against each difficulty metric (scatter, least-squares line, signed R², the paper's Table 1);
overlays of validation slices (TP red, FN blue, FP green, with their Dice) when the prepared dataset is
given; and, with a second run, the one-tailed Mann-Whitney U tables with the paper's marks.

A section whose data is missing (no difficulty table, no prepared dataset, an all-data run) is kept with
a note saying what is missing and how to get it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lesionseg.errors import LesionSegError
from lesionseg.io import write_text_atomic
from lesionseg.progress import ProgressCallback, ignore_progress
from lesionseg.report import html
from lesionseg.report.figures import plot_case_bars, plot_performance_vs_metric, plot_training_curves
from lesionseg.stats import RunData, analyse_run, compare_runs, fold_summary, read_run

#: Columns of the per-case table, in order (those present are shown).
CASE_COLUMNS = ("fold", "case_id", "dice", "lesion_f1", "hd_mm", "hd95_mm", "assd_mm", "detection_rate",
                "lesion_slices", "detected_slices", "empty_prediction")
#: Columns of folds.csv summarised with mean ± sd (and each class's ``val_dice_<class>`` of a multi-class run).
FOLD_SUMMARY_COLUMNS = ("val_dice", "val_lesion_f1", "val_hd95_mm", "val_hd_mm", "val_detection_rate")


def _configuration(run: RunData, prepared: Path | None, compare: RunData | None) -> str:
    rows: list[tuple[str, Any]] = [("run folder", str(run.root)), ("bundle", str(run.bundle_path or "none"))]
    rows.append(("prepared dataset", str(prepared) if prepared else "not given"))
    if compare is not None:
        rows.append(("compared with", str(compare.root)))
    rows.append(("rehearsal", _rehearsal_said(run.root)))
    for key, value in run.config.items():
        rows.append((key, json.dumps(value) if isinstance(value, (dict, list)) or value is None else value))
    if not run.config:
        return html.note(f"{run.root} has no train_config.json.") + html.table(("setting", "value"), rows, text_columns=(0, 1))
    return html.table(("setting", "value"), rows, text_columns=(0, 1))


def _rehearsal_said(root: Path) -> str:
    """What the run rehearsed (``RUN/rehearsal/rehearsal.json``, :mod:`lesionseg.train.rehearsal`), in words."""
    try:
        plan = json.loads((root / "rehearsal" / "rehearsal.json").read_text(encoding="utf-8"))["plan"]
        ages = plan.get("lesion_age")  # plans written before the ages were limited have none: the recipe's own
        aged = f", lesion ages {ages[0]:g}-{ages[1]:g}" if ages else ""
        return (f"{plan['cases']} synthetic cases of the starter's recipe '{plan['recipe']}' (seed {plan['seed']}"
                f"{aged}) trained on beside the dataset's, never validated on")
    except (OSError, ValueError, KeyError, TypeError):
        return "none"


def _budget(run: RunData) -> str:
    path = run.root / "budget.json"
    preset = run.config.get("preset")
    said = html.paragraph(f"Preset: {preset}." if preset else "Preset: none (the options were given one by one).")
    if not path.is_file():
        return said + html.note("No time budget: the run trained a given number of epochs.")
    try:
        budget = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        return said + html.note(f"{path} cannot be read ({error}).")
    rows = [[model.get("fold"), model.get("budget_s"), model.get("planned_epochs"), model.get("epochs_run"),
             model.get("planned_train_s"), model.get("planned_validations"), model.get("actual_s"),
             "yes" if model.get("stopped_at_deadline") else "no", "; ".join(model.get("notes") or [])]
            for model in budget.get("models", [])]
    text = html.paragraph(f"The run was given {budget.get('minutes')} minutes ({budget.get('budget_s', 0):.0f} s) and took "
                          f"{budget.get('spent_s', 0):.0f} s. Each model got an equal share of what was left when "
                          "it started; its trainer measured its pace and planned its epochs and validations.")
    headers = ("model", "budget s", "planned epochs", "epochs run", "planned training s", "validations",
               "actual s", "stopped at the deadline", "notes")
    return said + text + html.table(headers, rows, text_columns=(0, 7, 8))


def _folds(run: RunData) -> str:
    if not run.folds:
        return html.note(f"{run.root} has no folds.csv (the run did not finish).")
    columns = list(run.folds[0])
    rows = [[row.get(c) for c in columns] for row in run.folds]
    summary = []
    validated = [row for row in run.folds if row.get("val_dice") is not None]
    if validated:
        cells = []
        for column in columns:
            if column == columns[0]:
                cells.append("mean ± sd")
            elif (column in FOLD_SUMMARY_COLUMNS or column.startswith("val_dice_")) \
                    and any(r.get(column) is not None for r in validated):
                cells.append(fold_summary(r.get(column) for r in validated).format())
            else:
                cells.append("")
        summary.append(cells)
    text = html.paragraph("Validation metrics of each fold's model (means over its validation cases); the last row "
                          "is the mean ± sample standard deviation (ddof = 1) over the folds.")
    return text + html.table(columns, rows, summary_rows=summary)


def _cases(run: RunData, out: Path) -> str:
    if not run.val_cases:
        return html.note("No per-case validation (no val_cases.csv): an all-data model or an unfinished run.")
    columns = [c for c in CASE_COLUMNS if any(c in row for row in run.val_cases)]
    per_class = sorted({key for row in run.val_cases for key in row if key.startswith("dice_")})
    columns += per_class  # a model of several lesion classes: each class's Dice, and the lesion's (any class)
    rows = [[row.get(c) for c in columns] for row in run.val_cases]
    ordered = sorted(run.val_cases, key=lambda r: (r.get("dice") is None, -(r.get("dice") or 0.0)))
    bars = plot_case_bars([r["case_id"] for r in ordered], [r.get("dice") or 0.0 for r in ordered],
                          out / "case_dice.png", title="Validation Dice per case")
    empty = sum(bool(r.get("empty_prediction")) for r in run.val_cases)
    text = html.paragraph(f"{len(run.val_cases)} validation cases; {empty} with an empty prediction (their distances "
                          "are the image diagonal, the documented worst case)."
                          + (" Several lesion classes: dice is the mean of the classes' Dice values (dice_<class>); "
                             "dice_lesion, the F1 and the distances take any class against the background."
                             if per_class else ""))
    return text + html.table(columns, rows, text_columns=(0, 1), scroll=True) + html.figure(
        bars.name, "Dice of each validation case (validated by the fold that held it out), best first; "
                   "dashed: the mean.")


def _difficulty(run: RunData, out: Path, difficulty: Path | None) -> str:
    from lesionseg.difficulty import read_difficulty
    from lesionseg.report.difficulty_plots import plot_difficulty

    path = difficulty or run.difficulty_path
    if path is None:
        return html.note("No difficulty table: the run's curriculum used none. Give one with --difficulty "
                         "(from 'lesionseg difficulty') to see the distributions and the analysis.")
    groups = int(run.config.get("groups", 6) or 6)
    try:
        table = read_difficulty(path)
        paths = plot_difficulty(table, out, groups=min(groups, len(table)))
    except LesionSegError as error:
        return html.note(f"The difficulty distributions cannot be drawn: {error}")
    text = html.paragraph(f"Distribution of each difficulty metric over the {len(table)} lesion slices of {path.name}, "
                          f"bars coloured by the {min(groups, len(table))} equal-size curriculum groups "
                          "(G1 easiest); dashed lines are the group boundaries.")
    return text + "".join(html.figure(p.name, f"{p.stem.replace('difficulty_', '')}: histogram with group boundaries")
                          for p in paths)


def _curves(run: RunData, out: Path) -> str:
    if not run.logs:
        return html.note("No training log (log.csv) was found in the fold folders.")
    path = plot_training_curves(run.logs, out / "training_curves.png")
    caption = ("Left: mean training loss per epoch. Middle: mean validation Dice per case, on the epochs with "
               "validation. One line per fold.")
    if any(row.get("critic_loss") is not None for rows in run.logs.values() for row in rows):
        caption += (" Right: the adversarial critic's loss (it tells true masks from predicted ones; ln 2 = it cannot "
                    "tell) and the segmenter's adversarial term, mean per epoch.")
    else:
        caption = caption.replace("Middle:", "Right:")
    return html.figure(path.name, caption)


def _analysis(run: RunData, out: Path, difficulty: Path | None) -> str:
    from lesionseg.report.difficulty_plots import METRIC_LABELS

    try:
        analysis = analyse_run(run, difficulty)
    except LesionSegError as error:
        return html.note(f"No analysis: {error}")
    performance = list(analysis.rows[0].cells) if analysis.rows else []
    headers = ["difficulty metric", "slices", *[f"signed R² {p}" for p in performance], "note"]
    body = [[row.metric, row.n, *[f"{row.cells[p].r2:+.3f}" if row.cells[p].defined else "0 (undefined)"
                                  for p in performance], row.to_dict()["note"]] for row in analysis.rows]
    parts = [html.paragraph("Signed R² = sign(r) · r² of the least-squares line of each per-slice validation "
                            "metric on each difficulty metric (Pearson's r), as the curriculum paper's Table 1. "
                            "Slices whose contrast was not measurable are left out of the contrast row."),
             html.table(headers, body, text_columns=(0, len(headers) - 1), digits=3)]
    for row in analysis.rows:
        x_all = analysis.joined.metrics[row.metric]
        keep = analysis.joined.valid[row.metric]
        ys = {p: analysis.joined.performance[p][keep] for p in performance}
        path = plot_performance_vs_metric(x_all[keep], ys, row.cells, row.metric,
                                          METRIC_LABELS.get(row.metric, row.metric),
                                          out / f"performance_vs_{row.metric}.png", excluded=row.excluded)
        parts.append(html.figure(path.name, f"Per-slice validation performance against {row.metric}, with the "
                                            "least-squares line and its signed R²."))
    return "".join(parts)


def _overlays(run: RunData, out: Path, prepared: Path | None, per_fold: int) -> str:
    from lesionseg.report.overlay import plot_overlays
    from lesionseg.report.samples import predict_samples, samples_available

    reason = samples_available(run, prepared)
    if reason:
        return html.note(reason)
    samples = predict_samples(run, prepared, per_fold=per_fold)
    if not samples:
        return html.note("No validation slice could be matched to a model of the bundle.")
    path = plot_overlays(samples, out / "overlays.png", columns=3)
    return html.paragraph("The largest-lesion slice of validation cases, predicted by the model of the fold that "
                          "held the case out, on the prepared grid.") + html.figure(
        path.name, "True positives red, false negatives (missed lesion) blue, false positives green; "
                   "each panel's title gives its slice Dice.")


def _comparison(run: RunData, other: RunData) -> str:
    headers = ("metric", "better", "n A", "n B", "mean A", "mean B", "median A", "median B", "U (A)",
               "p one-tailed", "mark", "P(A better)", "Wilcoxon p", "Wilcoxon mark")
    parts = [html.paragraph(f"A = {run.root.name}, B = {other.root.name}. One-tailed, unpaired Mann-Whitney U test of "
                            "the hypothesis that A is better (higher Dice and detection rate, lower distances); "
                            "marks *** p < 0.01, ** p < 0.05, * p < 0.08 (the curriculum paper's). The paired "
                            "Wilcoxon signed-rank test is added when both runs validated the same cases.")]
    for level, title in (("case", "Per case"), ("fold", "Per fold"), ("slice", "Per slice")):
        rows = compare_runs(run, other, level=level)
        if not rows:
            parts.append(html.note(f"{title}: no values to compare."))
            continue
        parts.append(f"<h3>{html.escape(title)}</h3>")
        parts.append(html.table(headers, [[r.metric, r.better, r.n_a, r.n_b, r.mean_a, r.mean_b, r.median_a,
                                           r.median_b, r.u, r.p, r.mark, r.effect, r.wilcoxon_p, r.wilcoxon_mark]
                                          for r in rows], text_columns=(0, 1, 10, 13)))
    return "".join(parts)


def write_run_report(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None, *,
                     prepared: str | os.PathLike | None = None, compare: str | os.PathLike | None = None,
                     difficulty: str | os.PathLike | None = None, samples_per_fold: int = 2,
                     progress: ProgressCallback = ignore_progress) -> Path:
    """Write the HTML report of a run with its figures.

    Args:
        run_dir: the run folder.
        out_dir: the report folder (default ``RUN/report``); created, existing files overwritten.
        prepared: the prepared dataset the run was trained on (needed for the overlays).
        compare: a second run folder: adds the Mann-Whitney comparison (this run = A, better hypothesis).
        difficulty: a difficulty table to use instead of the run's ``difficulty.csv``.
        samples_per_fold: validation cases shown per fold in the overlays.
        progress: receives one ``{"event": "progress", "stage": "report", ...}`` per section.

    Returns:
        The path of ``index.html``.

    Raises:
        InputFileError, DatasetError: not a run folder, a prepared dataset or bundle that does not fit.
    """
    run = read_run(run_dir)
    other = read_run(compare) if compare is not None else None
    out = Path(out_dir) if out_dir is not None else run.root / "report"
    out.mkdir(parents=True, exist_ok=True)
    prepared_path = Path(prepared) if prepared is not None else None
    difficulty_path = Path(difficulty) if difficulty is not None else None
    builders = [
        ("configuration", "Configuration", lambda: _configuration(run, prepared_path, other)),
        ("budget", "Time budget", lambda: _budget(run)),
        ("folds", "Folds", lambda: _folds(run)),
        ("cases", "Cases", lambda: _cases(run, out)),
        ("difficulty", "Difficulty distributions", lambda: _difficulty(run, out, difficulty_path)),
        ("curves", "Training curves", lambda: _curves(run, out)),
        ("analysis", "Performance against difficulty", lambda: _analysis(run, out, difficulty_path)),
        ("overlays", "Overlays", lambda: _overlays(run, out, prepared_path, samples_per_fold)),
    ]
    if other is not None:
        builders.append(("comparison", "Comparison", lambda: _comparison(run, other)))
    sections = []
    for done, (anchor, title, build) in enumerate(builders):
        progress({"event": "progress", "stage": "report", "done": done, "total": len(builders), "message": title})
        sections.append((anchor, title, build()))
    progress({"event": "progress", "stage": "report", "done": len(builders), "total": len(builders)})
    index = out / "index.html"
    write_text_atomic(index, html.page(f"LesionSeg run report: {run.name}", sections,
                                       subtitle=f"Run folder {run.root}"))
    return index
