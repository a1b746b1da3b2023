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


def copied_run(weights_dir, name: str):
    import shutil

    from hf_tiny import trained_run

    result, _ = trained_run("bert", "custom")
    return shutil.copytree(result.run_dir, weights_dir / name)


def test_resume_from_a_run_whose_history_is_damaged_is_refused_before_training(weights_dir, capsys):
    run = copied_run(weights_dir, "ft-damaged")
    (run / "history.json").write_text("[1, 2]")
    assert main(["finetune", "--resume", str(run), "--out", "ft-next", "--loop", "custom"]) == 1
    err = capsys.readouterr().err
    assert "error: Cannot resume" in err and "history.json is not a JSON object" in err and "Traceback" not in err
    assert not (weights_dir / "ft-next").exists()


def test_resume_with_other_data_settings_is_refused_before_training_naming_them(weights_dir, capsys):
    run = copied_run(weights_dir, "ft-first")
    code = main(["finetune", "--resume", str(run), "--out", "ft-next", "--max-examples", "40", "--seed", "3"])
    err = capsys.readouterr().err
    assert code == 1 and "other data settings" in err
    assert "max_examples None (now 40)" in err and "seed 0 (now 3)" in err
    assert "fine-tune (custom): training" not in err  # refused before the first step, not after the last
    assert not (weights_dir / "ft-next").exists()


def test_resume_without_repeating_the_settings_continues_with_the_runs_own(weights_dir, capsys):
    run = copied_run(weights_dir, "ft-first")
    assert main(["finetune", "--resume", str(run), "--out", "ft-next", "--epochs", "1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    first = json.loads((run / "metrics.json").read_text())
    assert summary["before"] == {k: round(v, 4) for k, v in first["before"].items()}  # the same held-out split
    saved = json.loads((weights_dir / "ft-next" / "finetune_config.json").read_text())
    assert saved["dataset"] == json.loads((run / "finetune_config.json").read_text())["dataset"]


@pytest.mark.parametrize(
    ("file", "change", "reason"),
    [
        ("config.json", {"hidden_size": 64}, "config.json says the model is 64 wide"),
        ("labels.json", None, "labels.json lists 3 labels but"),
    ],
    ids=["wider-config", "more-labels-than-the-head"],
)
def test_predict_refuses_a_run_whose_files_disagree_with_its_weights(weights_dir, capsys, file, change, reason):
    run = copied_run(weights_dir, "ft-damaged")
    if change is None:
        (run / file).write_text(json.dumps(["negative", "positive", "neutral"]))
    else:
        (run / file).write_text(json.dumps({**json.loads((run / file).read_text()), **change}))
    assert main(["predict", "ft-damaged", "the film was witty"]) == 1
    captured = capsys.readouterr()
    assert reason in captured.err and captured.out == ""  # no label, no probability: no confident wrong answer
    assert main(["runs"]) == 0
    assert f"unreadable: {reason}" in capsys.readouterr().out
    assert main(["finetune", "--resume", "ft-damaged", "--out", "ft-next"]) == 1
    assert reason in capsys.readouterr().err and not (weights_dir / "ft-next").exists()
