"""The inspection commands end to end: plot-attention writes a PNG from a saved run,
check-gradients prints its table, and bad requests are clear errors with exit code 1."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from model_zoo import Transformer
from model_zoo.cli import main
from model_zoo.toy.tasks import make_task
from model_zoo.toy.train_config import TrainConfig
from model_zoo.toy.training import train

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny copy run, trained a few dozen steps and saved the way `train` saves runs."""
    task = make_task("copy", n_heldout=32)
    torch.manual_seed(0)
    model = Transformer(task.model_config(d_model=32, n_heads=2, d_ff=64, n_encoder_layers=2, n_decoder_layers=2))
    path = tmp_path_factory.mktemp("weights") / "copy"
    train(model, task, TrainConfig(steps=30, warmup=10, eval_every=30), checkpoint_dir=path)
    return path


@pytest.mark.parametrize("extra", [["--head", "1"], ["--mean"], []], ids=["one-head", "mean", "every-head"])
def test_plot_attention_writes_a_png(run_dir, tmp_path, capsys, extra):
    out = tmp_path / "attention.png"
    code = main(
        ["plot-attention", str(run_dir), "3 5 7 9", "--kind", "cross", "--layer", "1", *extra, "--out", str(out)]
    )
    assert code == 0
    assert out.read_bytes().startswith(PNG_MAGIC)
    printed = capsys.readouterr().out
    assert "source: 3 5 7 9" in printed and f"wrote {out}" in printed


def test_plot_attention_finds_a_run_by_name_under_root(run_dir, tmp_path):
    out = tmp_path / "enc.png"
    code = main(
        ["plot-attention", "copy", "3 5", "--kind", "encoder_self", "--root", str(run_dir.parent), "--out", str(out)]
    )
    assert code == 0 and out.is_file()


def test_plot_attention_with_a_layer_the_model_lacks_is_a_clear_error(run_dir, tmp_path, capsys):
    code = main(["plot-attention", str(run_dir), "3 5", "--layer", "7", "--out", str(tmp_path / "x.png")])
    assert code == 1
    assert "error: layer=7 is out of range" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_plot_attention_on_a_missing_run_is_a_clear_error(tmp_path, capsys):
    code = main(["plot-attention", str(tmp_path / "nothing"), "3 5", "--out", str(tmp_path / "x.png")])
    assert code == 1 and "error: No run at" in capsys.readouterr().err


def test_check_gradients_prints_a_passing_table(capsys):
    assert main(["check-gradients"]) == 0
    printed = capsys.readouterr().out
    assert "MultiHeadAttention" in printed and "DecoderBlock" in printed
    assert "6 of 6 components pass" in printed


def test_stability_demo_command_prints_both_verdicts_and_writes_curves(tmp_path, capsys):
    out = tmp_path / "curves.png"
    assert main(["stability-demo", "--task", "copy", "--steps", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("stable (") and "\nbroken (" in printed
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_python_dash_m_model_zoo_plot_attention_runs_as_a_program(run_dir, tmp_path):
    out = tmp_path / "cli.png"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "model_zoo",
            "plot-attention",
            str(run_dir),
            "3 5 7 9",
            "--kind",
            "cross",
            "--layer",
            "1",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().startswith(PNG_MAGIC)


# -- insights: figures as PNG, SVG or CSV, snapshots, the beam tree ---------------------------------------
@pytest.mark.parametrize("fmt", ["png", "svg", "csv"])
def test_plot_attention_writes_the_format_asked_for(run_dir, tmp_path, fmt):
    out = tmp_path / f"attention.{fmt}"
    args = ["plot-attention", str(run_dir), "3 5 7", "--target", "3 5 7", "--head", "0", "--format", fmt]
    assert main([*args, "--out", str(out)]) == 0
    data = out.read_bytes()
    if fmt == "png":
        assert data.startswith(PNG_MAGIC)
    elif fmt == "svg":
        assert data.startswith(b"<svg")
    else:
        import pandas as pd

        frame = pd.read_csv(out)
        assert len(frame) == 4 * 3  # decoder rows <bos> 3 5 7, source keys 3 5 7
        assert frame.groupby("query_pos")["weight"].sum().tolist() == pytest.approx([1.0] * 4, abs=1e-5)


def test_plot_attention_at_a_training_step_draws_the_probes_snapshot(run_dir, tmp_path, capsys):
    from model_zoo.toy.runs import load_attention_snapshots

    snapshots = load_attention_snapshots(run_dir)
    out = tmp_path / "step.csv"
    assert main(["plot-attention", str(run_dir), "--step", "30", "--head", "1", "--layer", "1", "--out", str(out)]) == 0
    import pandas as pd

    frame = pd.read_csv(out)
    expected = snapshots.maps[snapshots.steps.index(30)]["cross"][1, 1]  # (T, S) of layer 1, head 1
    assert frame["weight"].tolist() == pytest.approx(expected.flatten().tolist(), abs=1e-6)
    assert main(["plot-attention", str(run_dir), "--step", "7", "--out", str(out)]) == 1
    assert "No snapshot at step 7; the run has snapshots at steps [0, 30]" in capsys.readouterr().err
    assert main(["plot-attention", str(run_dir), "3 5", "--step", "30", "--out", str(out)]) == 1
    assert "leave out the text" in capsys.readouterr().err


def test_attention_snapshots_prints_each_step_and_the_snap(run_dir, tmp_path, capsys):
    from model_zoo.toy.runs import load_attention_snapshots
    from model_zoo.views.attention import alignment_shares, snap_step

    shares = alignment_shares(load_attention_snapshots(run_dir))
    out = tmp_path / "snap.svg"
    assert main(["attention-snapshots", str(run_dir), "--threshold", "0.15", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    best_at_30 = shares[shares["step"] == 30]["share"].max()
    assert "    30  " in printed and f"{best_at_30:.3f}" in printed
    snap = snap_step(shares, 0.15)
    assert (f"snapped at step {snap.step}" if snap else "not snapped") in printed
    assert out.read_bytes().startswith(b"<svg")


def test_decode_writes_the_beam_tree(run_dir, tmp_path, capsys):
    out = tmp_path / "tree.csv"
    assert main(["decode", str(run_dir), "3 5 7", "--beam", "2", "--tree", str(out)]) == 0
    import pandas as pd

    nodes = pd.read_csv(out)
    assert nodes["status"].iloc[0] == "kept" and nodes["token"].iloc[0] == "<bos>"
    assert nodes["returned"].max() >= 1 and set(nodes["status"]) <= {"kept", "finished", "pruned", "cut"}
    assert main(["decode", str(run_dir), "3 5 7", "--tree", str(out)]) == 1
    assert "add --beam" in capsys.readouterr().err


def damaged_copy(run_dir: Path, root: Path, file: str, text: str) -> Path:
    import shutil

    copy = Path(shutil.copytree(run_dir, root / "damaged"))
    (copy / file).write_text(text)
    return copy


@pytest.mark.parametrize("text", ["[1]", "[" * 100_000 + "]" * 100_000], ids=["a-list", "nested-100000-deep"])
def test_decode_and_plot_attention_say_a_damaged_run_json_is_unreadable_without_a_traceback(
    run_dir, tmp_path, capsys, text
):
    damaged = damaged_copy(run_dir, tmp_path, "run.json", text)
    assert main(["decode", str(damaged), "1 2 3"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "run.json" in err and "Traceback" not in err
    assert main(["plot-attention", str(damaged), "1 2 3", "--out", str(tmp_path / "a.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "run.json" in err
    assert not (tmp_path / "a.png").exists()


def test_a_symlinked_run_folder_is_refused_by_decode_as_by_the_listing(run_dir, tmp_path, capsys, monkeypatch):
    from model_zoo.run_folder import list_runs
    from model_zoo.toy.runs import check_run

    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(tmp_path))
    (tmp_path / "linked").symlink_to(run_dir, target_is_directory=True)
    listed = {r.name: r.error for r in list_runs(tmp_path, check=check_run)}
    assert "symbolic link" in listed["linked"]
    for command in (["decode", str(tmp_path / "linked"), "1 2"], ["decode", "linked", "1 2"]):  # a path, a name
        assert main(command) == 1
        err = capsys.readouterr().err
        assert listed["linked"] in err, err
    assert main(["plot-attention", str(tmp_path / "linked"), "1 2", "--out", str(tmp_path / "a.png")]) == 1
    assert listed["linked"] in capsys.readouterr().err
