"""`python -m model_zoo train / decode / runs` end to end on a tiny run, and clear CLI errors."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from model_zoo.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--d-model", "16", "--heads", "2", "--layers", "1", "--d-ff", "32", "--batch-size", "16"]


def run_cli(args, weights_dir):
    env = {**os.environ, "WORKBENCH_WEIGHTS_DIR": str(weights_dir), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "model_zoo", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_train_decode_and_runs_end_to_end(tmp_path):
    weights = tmp_path / "weights"
    out = weights / "copy"
    trained = run_cli(
        ["train", "--task", "copy", "--out", str(out), "--steps", "30", "--eval-every", "15", *TINY], weights
    )
    assert trained.returncode == 0, trained.stderr
    assert "trained copy: 30 steps" in trained.stdout and "exact match" in trained.stdout
    assert "30/30" in trained.stderr  # the tqdm bar
    assert {"config.json", "model.safetensors", "vocab.json", "history.json", "train_config.json", "run.json"} <= {
        p.name for p in out.iterdir()
    }

    decoded = run_cli(["decode", str(out), "3 5 7 9"], weights)
    assert decoded.returncode == 0, decoded.stderr
    assert all(token in [str(i) for i in range(1, 11)] for token in decoded.stdout.split())

    beam = run_cli(["decode", "copy", "3 5 banana", "--beam", "3"], weights)  # by name, under the weights dir
    assert beam.returncode == 0, beam.stderr
    assert "<unk>: banana" in beam.stderr

    listed = run_cli(["runs"], weights)
    assert listed.returncode == 0 and "copy" in listed.stdout and "scratch" in listed.stdout


def test_cli_errors_are_one_line_messages(tmp_path, weights_dir, capsys):
    out = weights_dir / "tiny"
    assert main(["train", "--out", str(out), "--steps", "3", "--no-progress", *TINY]) == 0
    capsys.readouterr()

    assert main(["decode", str(out), "   "]) == 1
    assert "error: The input is empty" in capsys.readouterr().err

    assert main(["train", "--out", str(out), "--steps", "3", "--no-progress", *TINY]) == 1
    assert "already exists" in capsys.readouterr().err

    assert main(["train", "--out", str(weights_dir / "bad name"), "--steps", "3", *TINY]) == 1
    assert "not allowed" in capsys.readouterr().err

    assert main(["decode", str(tmp_path / "nothing-here"), "1 2"]) == 1
    assert "No run at" in capsys.readouterr().err

    assert main(["decode", str(out), "1 2", "--beam", "2", "--sample"]) == 1
    assert "not both" in capsys.readouterr().err

    assert main(["train", "--out", str(out), "--steps", "5", "--resume", "--no-progress"]) == 0
    assert "trained copy: 5 steps" in capsys.readouterr().out


def test_the_same_settings_train_the_same_run(weights_dir):
    # the first weights are drawn from the run's seed too, so two trainings with the same settings
    # are equal (the app's queue and the CLI stop at the same step); another seed is another run
    from safetensors.torch import load_file

    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        assert main(["train", "--out", name, "--steps", "4", "--seed", seed, "--no-progress", *TINY]) == 0
    a, b, c = (load_file(weights_dir / name / "model.safetensors") for name in "abc")
    assert all((a[k] == b[k]).all() for k in a)
    assert any((a[k] != c[k]).any() for k in a)
