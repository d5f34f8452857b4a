"""End to end through run.py: the tiny preset trains, evaluates, exports; predict uses the export."""

from __future__ import annotations

import csv
import json

from conftest import run_cli


def test_tiny_run_then_predict_with_the_exported_model(tmp_path):
    workdir = tmp_path / "run"
    result = run_cli("translation", "--preset", "tiny", "--workdir", str(workdir))
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((workdir / "results.json").read_text())
    metrics = results["metrics"]
    assert results["primary_metric"] == "bleu" and 0.0 <= metrics["bleu"] <= 100.0
    for key in ("bleu_greedy", "chrf", "chrf_greedy", "token_accuracy_teacher_forced", "loss_teacher_forced"):
        assert isinstance(metrics[key], float)
    assert set(metrics["model"]) == {"beam", "greedy"} and "word_by_word" in metrics["baseline"]
    assert metrics["sacrebleu"]["bleu_signature"].startswith("nrefs:")
    assert "case:lc" in metrics["sacrebleu"]["bleu_signature"]
    assert results["data"]["pairs"] == {"train": 320, "validation": 40, "test": 40}
    assert set(results["export"]["endpoints"]) == {"translate", "translate_greedy"}
    with open(workdir / "test_predictions.tsv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert len(rows) == 40

    # The exported model, given the raw source strings (the same batch as in the evaluation, so the
    # arithmetic is identical), says what the evaluation decoded.
    sources = [row["source"] for row in rows]
    predicted = run_cli("translation", "predict", "--model", str(workdir / "export"), *sources)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    lines = [json.loads(line) for line in predicted.stdout.strip().splitlines()]
    assert [line["source"] for line in lines] == sources
    assert [line["translation"] for line in lines] == [row["beam"] for row in rows]
    assert all(isinstance(line["score"], float) for line in lines)


def test_cli_reports_bad_inputs_in_one_line(tmp_path):
    bad = tmp_path / "pairs.txt"
    bad.write_text("Go.\tVa !\nbroken line without tab\n", encoding="utf-8")
    result = run_cli("translation", "--preset", "tiny", "--data-dir", str(bad), "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "error:" in result.stderr and "pairs.txt:2" in result.stderr
    result = run_cli("translation", "predict", "--model", str(tmp_path), "Hello.")
    assert result.returncode == 2 and "not an exported translation model" in result.stderr
