"""``lesionseg report RUN``: every section, every figure a valid PNG beside the page, overlays, comparison."""

from __future__ import annotations

import csv
import re
import shutil
import statistics
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from lesionseg.cli import main
from lesionseg.report import FN_COLOUR, FP_COLOUR, TP_COLOUR, overlay_rgb
from lesionseg.report.html import table

RUN_SECTIONS = ("configuration", "folds", "cases", "difficulty", "curves", "analysis", "overlays", "comparison")


class _Tables(HTMLParser):
    """Collects the text of every table cell: a list of tables, each a list of rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _better_copy(run: Path, destination: Path) -> Path:
    """A copy of the run's tables whose per-case Dice is higher (a made-up 'better' run B)."""
    shutil.copytree(run, destination, ignore=shutil.ignore_patterns("*.pt", "*.lsb", "report", "analysis.csv"))
    for path in destination.glob("fold_*/val_cases.csv"):
        rows = _rows(path)
        for position, row in enumerate(rows):
            row["dice"] = f"{min(1.0, float(row['dice']) + 0.3 + 0.05 * position):.6f}"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return destination


@pytest.fixture(scope="module")
def report(tiny_run, tiny_prepared, tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    other = _better_copy(tiny_run, root / "better_run")
    out = root / "report"
    assert main(["report", str(tiny_run), "--prepared", str(tiny_prepared), "--compare", str(other),
                 "--out", str(out), "--progress", "none"]) == 0
    return {"out": out, "page": (out / "index.html").read_text(encoding="utf-8"), "other": other}


@pytest.mark.slow
def test_report_has_every_section_and_every_figure_is_a_png_beside_it(report):
    from PIL import Image

    page = report["page"]
    for anchor in RUN_SECTIONS:
        assert f'<section id="{anchor}">' in page, anchor
    sources = re.findall(r'<img src="([^"]+)"', page)
    expected = {"case_dice.png", "difficulty_area_mm2.png", "difficulty_contrast_fisher.png", "training_curves.png",
                "performance_vs_area_mm2.png", "performance_vs_contrast_fisher.png", "overlays.png"}
    assert set(sources) == expected
    for name in sources:
        assert "/" not in name  # relative, beside the page
        with Image.open(report["out"] / name) as image:
            assert image.format == "PNG" and min(image.size) > 100
            image.verify()
    lowered = page.lower()
    assert "<script" not in lowered and "<link" not in lowered and "http://" not in lowered and "https://" not in lowered


@pytest.mark.slow
def test_fold_table_summary_is_mean_and_sample_sd_of_folds_csv(report, tiny_run):
    folds = _rows(tiny_run / "folds.csv")
    values = [float(row["val_hd95_mm"]) for row in folds]
    assert f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}" in report["page"]


@pytest.mark.slow
def test_comparison_table_holds_scipys_one_tailed_p(report, tiny_run):
    parser = _Tables()
    parser.feed(report["page"])
    comparisons = [t for t in parser.tables if t and t[0][:2] == ["metric", "better"]]
    per_case = comparisons[0]
    header = per_case[0]
    dice_row = next(row for row in per_case[1:] if row[0] == "dice")
    dice_a = [float(r["dice"]) for f in sorted(tiny_run.glob("fold_*")) for r in _rows(f / "val_cases.csv")]
    dice_b = [float(r["dice"]) for f in sorted(report["other"].glob("fold_*")) for r in _rows(f / "val_cases.csv")]
    p = scipy_stats.mannwhitneyu(dice_a, dice_b, alternative="greater").pvalue  # H1: RUN (A) is better
    assert float(dice_row[header.index("p one-tailed")]) == pytest.approx(p, abs=5e-4)
    assert dice_row[header.index("mark")] == ""  # B was made better, so A is not
    assert float(dice_row[header.index("mean B")]) > float(dice_row[header.index("mean A")])


@pytest.mark.slow
def test_overlay_samples_are_predicted_by_each_folds_model(tiny_run, tiny_prepared):
    from lesionseg.metrics import dice
    from lesionseg.report.samples import predict_samples
    from lesionseg.stats import read_run

    samples = predict_samples(read_run(tiny_run), tiny_prepared, per_fold=1)
    folds = sorted(p.name for p in tiny_run.glob("fold_*"))
    assert len(samples) == len(folds)
    for sample, fold in zip(samples, folds):
        assert f"(fold {fold.split('_')[1]})" in sample.label
        assert sample.truth.any() and sample.prediction.shape == sample.truth.shape == (64, 64)
        assert sample.dice == pytest.approx(dice(sample.prediction, sample.truth))


@pytest.mark.slow
def test_report_without_prepared_notes_the_overlays_and_escapes_text(report, tmp_path, capsys):
    run = shutil.copytree(report["other"], tmp_path / "run")
    config = (run / "train_config.json").read_text(encoding="utf-8")
    (run / "train_config.json").write_text(config.replace('"network": "unet2d"', '"network": "<b>unet&2d</b>"'))
    out = tmp_path / "page"
    assert main(["report", str(run), "--out", str(out), "--progress", "none"]) == 0
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "&lt;b&gt;unet&amp;2d&lt;/b&gt;" in page and "<b>unet" not in page
    assert "--prepared PREPARED" in page and "overlays.png" not in page
    assert not (out / "overlays.png").exists()


def test_training_curves_of_an_all_data_model_say_why_the_validation_panel_is_empty(monkeypatch, tmp_path):
    """The fast presets train on every case below 20 cases: no validation Dice to draw, and the panel says so;
    a validated fold draws its Dice and F1 and no such note."""
    from lesionseg.report import figures

    drawn = {}
    monkeypatch.setattr(figures, "save_figure", lambda figure, path, rect=None: drawn.setdefault(str(path), figure))
    rows = [{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4}]
    figures.plot_training_curves({"all": rows}, tmp_path / "all.png")
    validated = [{**rows[0], "val_dice": 0.6, "val_lesion_f1": 0.5}, rows[1]]
    figures.plot_training_curves({"0": validated}, tmp_path / "fold.png")
    figures.plot_training_curves({"0": rows}, tmp_path / "early.png")  # a fold before its first validation
    for name, lines, note in (("all.png", 0, "trained on every case"), ("fold.png", 2, None),
                              ("early.png", 0, "no validation yet")):
        dice_axes = drawn[str(tmp_path / name)].axes[1]
        texts = [text.get_text() for text in dice_axes.texts]
        assert len(dice_axes.lines) == lines and (any(note in t for t in texts) if note else not texts), name


def test_table_escapes_cells_and_formats_numbers():
    text = table(["name", "value"], [["<script>&", 0.123456], ["x", None]])
    assert "&lt;script&gt;&amp;" in text and "<script>" not in text
    assert ">0.123<" in text and ">—<" in text


def test_overlay_colours_true_positive_red_false_negative_blue_false_positive_green():
    image = np.full((1, 4), 50.0)
    prediction = np.array([[0, 1, 0, 1]])
    truth = np.array([[0, 1, 1, 0]])
    rgb = overlay_rgb(image, prediction, truth, alpha=1.0)
    assert rgb[0, 0, 0] == rgb[0, 0, 1] == rgb[0, 0, 2]  # true negative: grey
    assert tuple(rgb[0, 1]) == pytest.approx(TP_COLOUR) and np.argmax(rgb[0, 1]) == 0  # red
    assert tuple(rgb[0, 2]) == pytest.approx(FN_COLOUR) and np.argmax(rgb[0, 2]) == 2  # blue
    assert tuple(rgb[0, 3]) == pytest.approx(FP_COLOUR) and np.argmax(rgb[0, 3]) == 1  # green


def test_report_of_a_folder_that_is_not_a_run_is_one_sentence(tmp_path, capsys):
    assert main(["report", str(tmp_path), "--progress", "none"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a training run folder" in err[0]


@pytest.mark.slow
def test_report_renders_in_headless_chromium(report, tmp_path):
    """The page opens in a real browser and its figures load (skipped where Chromium is not installed)."""
    from PIL import Image

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed")
    shot = tmp_path / "shot.png"
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
               f"--screenshot={shot}", "--window-size=1400,4000", (report["out"] / "index.html").as_uri()]
    subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=float)
    # a rendered page with figures: many non-white pixels, and some of the histograms' green/red bars
    assert (pixels.sum(axis=2) < 700).mean() > 0.02
    reddish = (pixels[..., 0] > 150) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert reddish.sum() > 100
