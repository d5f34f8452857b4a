"""Through run.py, on the session's one tiny run (tests/conftest.py ``tiny_run``): the metrics it
wrote, predict on the exported model (all test sentences, awkward inputs), and one-line errors."""

from __future__ import annotations

import csv
import json

from conftest import run_cli


def test_tiny_run_metrics_and_predictions_file(tiny_run):
    workdir = tiny_run("translation")
    results = json.loads((workdir / "results.json").read_text())
    metrics = results["metrics"]
    assert results["primary_metric"] == metrics["primary"] == "bleu_cased"
    assert 0.0 <= metrics["model"]["bleu_cased"] <= 100.0
    for key in ("bleu_lowercased", "bleu_cased_greedy", "bleu_lowercased_greedy", "chrf", "chrf_lowercased",
                "chrf_greedy", "exact_match", "token_accuracy_teacher_forced", "loss_teacher_forced"):
        assert isinstance(metrics["model"][key], float), key
    assert set(metrics["baselines"]) == {"word_by_word"}
    assert set(metrics["baselines"]["word_by_word"]) >= {"bleu_cased", "bleu_lowercased", "chrf", "exact_match"}
    assert metrics["baselines"]["word_by_word"]["bleu_cased"] > 1.0  # the lexicon alone gets some words right
    assert set(metrics["validation"]) >= {"bleu_cased", "bleu_lowercased", "chrf", "sentences"}
    signatures = metrics["sacrebleu"]
    assert signatures["bleu_cased_signature"].startswith("nrefs:")
    assert "case:mixed" in signatures["bleu_cased_signature"]
    assert "case:lc" in signatures["bleu_lowercased_signature"]
    assert set(metrics["sentences_per_second"]) == {"beam", "greedy"}
    assert metrics["vocabulary"]["unknown_token_rate_test"]["source"] < 0.05
    assert results["data"]["pairs"] == {"train": 320, "validation": 40, "test": 40}
    assert set(results["export"]["endpoints"]) == {"translate", "translate_greedy"}
    state = json.loads((workdir / "checkpoints" / "preprocessor" / "preprocessor.json").read_text())["state"]
    assert state["source_vocabulary"][:4] == ["", "[UNK]", "[START]", "[END]"] and state["lexicon"]
    # Both sides keep case (the synthetic sentences' capitalised first words).
    assert any(word[:1].isupper() for word in state["target_vocabulary"])
    assert any(word[:1].isupper() for word in state["source_vocabulary"])
    assert state["attach_target"] and not state["lowercase_target"] and not state["lowercase_source"]
    samples = (workdir / "samples" / "sources.txt").read_text(encoding="utf-8").splitlines()
    assert results["export"]["predict_example"][5:] == samples and len(samples) == 3


def test_tiny_run_draws_the_attention_of_test_sentences(tiny_run):
    picture = tiny_run("translation") / "attention.png"
    content = picture.read_bytes()
    assert content[:8] == b"\x89PNG\r\n\x1a\n" and 20_000 < len(content) < 2_000_000, len(content)


def test_exported_model_predicts_what_the_evaluation_decoded(tiny_run):
    workdir = tiny_run("translation")
    with open(workdir / "test_predictions.tsv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert len(rows) == 40
    # The same batch as in the evaluation (so the arithmetic is identical), plus awkward inputs.
    sources = [row["source"] for row in rows]
    awkward = ["Ünïcödé «quotes» — and\u202fspaces\u2009!", "x" * 5000]  # empty input: tests/test_bad_input.py
    predicted = run_cli("translation", "predict", "--json", "--model", str(workdir / "export"), *sources, *awkward)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    lines = [json.loads(line) for line in predicted.stdout.strip().splitlines()]
    assert [line["source"] for line in lines] == sources + awkward
    assert [line["translation"] for line in lines[:40]] == [row["beam"] for row in rows]
    assert all(isinstance(line["score"], float) for line in lines)


def test_cli_reports_bad_inputs_in_one_line(tmp_path):
    bad = tmp_path / "pairs.txt"
    bad.write_text("Go.\tVa !\nbroken line without tab\n", encoding="utf-8")
    result = run_cli("translation", "--preset", "tiny", "--data-dir", str(bad), "--workdir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert "error:" in result.stderr and "pairs.txt:2" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("translation", "predict", "--model", str(tmp_path), "Hello.")
    assert result.returncode == 2 and "is not an exported model" in result.stderr
    # evaluate without a fitted preprocessor in the workdir: one line naming the train step.
    result = run_cli("translation", "--preset", "tiny", "--workdir", str(tmp_path / "empty"), "--steps", "evaluate")
    assert result.returncode == 2 and "run the 'train' step" in result.stderr and "Traceback" not in result.stderr
