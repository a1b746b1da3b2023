"""`python -m model_zoo finetune` and `predict` on the tiny BERT, in-process."""

import json

import pytest
from hf_tiny import tiny_bert_dir, tiny_csv

from model_zoo.cli import main


def test_finetune_then_predict_prints_label_and_probability(weights_dir, capsys):
    out = weights_dir / "ft-tiny"
    code = main(
        [
            "finetune",
            "--model",
            str(tiny_bert_dir()),
            "--dataset",
            str(tiny_csv()),
            "--text-column",
            "review",
            "--label-column",
            "sentiment",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--max-examples",
            "0",
            "--out",
            str(out),
            "--loop",
            "custom",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0
    summary = json.loads(captured.out)
    assert (
        summary["labels"] == ["negative", "positive"] and summary["steps"] == 5
    )  # 72 training sentences (90% of 80), 16 a step
    assert set(summary["before"]) == set(summary["after"]) == {"accuracy", "macro_f1"}
    assert "fine-tune (custom)" in captured.err  # the progress bar
    assert (out / "model.safetensors").is_file()

    assert main(["predict", str(out), "the film was witty", "the plot was dull"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    label, probability, text = lines[0].split("\t")
    assert label in {"negative", "positive"} and 0.5 <= float(probability) <= 1 and text == "the film was witty"


def test_bad_input_is_one_line_of_error_not_a_traceback(tmp_path, weights_dir, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\na,pos\nb,pos\n")
    assert main(["finetune", "--model", str(tiny_bert_dir()), "--dataset", str(bad), "--out", "r"]) == 1
    assert "two classes" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), "some text"]) == 1
    assert "not a fine-tuning run" in capsys.readouterr().err


def test_help_lists_the_finetune_options(capsys):
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    assert "--text-column" in capsys.readouterr().out


def test_finetune_refuses_to_write_over_an_existing_run_without_overwrite(weights_dir, capsys):
    from model_zoo import Transformer
    from model_zoo.toy.runs import check_run, save_run
    from model_zoo.toy.tasks import make_task

    copy = make_task("copy")
    save_run(weights_dir / "taken", Transformer(copy.model_config()), copy)  # a scratch run
    args = ["finetune", "--model", str(tiny_bert_dir()), "--dataset", str(tiny_csv()), "--text-column", "review",
            "--label-column", "sentiment", "--max-steps", "1", "--out", "taken"]  # fmt: skip
    assert main(args) == 1
    assert "already exists" in capsys.readouterr().err
    assert check_run(weights_dir / "taken") is None and (weights_dir / "taken" / "vocab.json").is_file()  # untouched
