"""`model_zoo.run_folder`: runs reach the disk whole or not at all, one job holds a run name, the
names users type never write outside the weights folder, and damaged runs are listed as
unreadable with the reason — by the library and the command line, never with a traceback."""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from model_zoo import Transformer
from model_zoo.cli import main
from model_zoo.run_folder import (
    clean_leftovers,
    is_reserved,
    list_runs,
    output_dir,
    reserve,
    write_run,
)
from model_zoo.toy.runs import check_run, load_run, save_run
from model_zoo.toy.tasks import make_task

ROOT = Path(__file__).resolve().parent.parent
TASK = make_task("copy", n_symbols=5, max_len=4, n_heldout=8)
TINY = ["--d-model", "16", "--heads", "2", "--layers", "1", "--d-ff", "32", "--batch-size", "8"]


def tiny_model():
    return Transformer(TASK.model_config(d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32))


def saved(root: Path, name: str) -> Path:
    return save_run(root / name, tiny_model(), TASK)


def damage(root: Path) -> dict[str, str]:
    """One run for each way a run folder breaks, and the words its reason must contain."""
    expected = {}
    run = saved(root, "truncated")
    weights = run / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])
    expected["truncated"] = "truncated"
    run = saved(root, "wrong-shapes")
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "d_model": 32, "d_ff": 64}))
    expected["wrong-shapes"] = "don't belong together"
    run = saved(root, "not-json")
    (run / "config.json").write_text("{ this is not json")
    expected["not-json"] = "not valid JSON"
    run = saved(root, "no-vocab")
    (run / "vocab.json").unlink()
    expected["no-vocab"] = "vocab.json is missing"
    run = saved(root, "unknown-key")
    (run / "config.json").write_text(json.dumps({**config, "n_experts": 8}))
    expected["unknown-key"] = "Unknown config field"
    outside = saved(root.parent, "outside")
    (root / "linked").symlink_to(outside, target_is_directory=True)
    expected["linked"] = "symbolic link"
    saved(root, "good").rename(root / "with space")
    expected["with space"] = "not a valid run name"
    saved(root, "good").rename(root / "café")
    expected["café"] = "not a valid run name"
    run = saved(root, "run-json-list")
    (run / "run.json").write_text("[1]")
    expected["run-json-list"] = "not a JSON object"
    run = saved(root, "metrics-list")
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "final_metrics": [1], "step": "three"}))
    expected["metrics-list"] = "run.json 'step' must be a whole number"  # every file has its schema
    run = saved(root, "deep")
    (run / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    expected["deep"] = "nested too deeply"  # not a RecursionError that takes the whole list down
    return expected


def test_damaged_runs_are_listed_as_unreadable_with_the_reason_and_good_ones_as_readable(tmp_path):
    root = tmp_path / "weights"
    expected = damage(root)
    saved(root, "good")
    found = {r.name: r for r in list_runs(root, check=check_run)}
    for name, words in expected.items():
        assert found[name].error is not None and words in found[name].error, (name, found[name].error)
    assert found["good"].readable
    assert found["metrics-list"].metrics == {} and found["metrics-list"].step is None


def test_the_cli_lists_good_and_unreadable_runs_and_refuses_bad_ones_in_one_line(weights_dir, tmp_path, capsys):
    damage(weights_dir)
    saved(weights_dir, "good")
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert "good" in out and "unreadable: model.safetensors is truncated" in out
    assert main(["decode", "wrong-shapes", "1 2"]) == 1
    assert "error:" in capsys.readouterr().err
    assert main(["plot-attention", "truncated", "1 2", "--out", str(tmp_path / "a.png")]) == 1
    assert "truncated" in capsys.readouterr().err
    assert main(["finetune", "--resume", "no-vocab", "--out", "ft"]) == 1
    assert "error:" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name",
    ["../escape", "/tmp/escape-abs", "a/b", "..", ".", "", "x" * 300, "$(touch pwned)", "a;b", "ünï", "run name"],
)
def test_names_users_type_never_write_outside_the_weights_folder(name, weights_dir, tmp_path, capsys):
    before = set(tmp_path.rglob("*"))
    with pytest.raises(ValueError, match=re.escape(repr(name))):  # the message quotes what was typed
        output_dir(name)
    assert main(["train", "--out", name, "--steps", "1", "--no-progress", *TINY]) == 1
    assert "error:" in capsys.readouterr().err
    assert set(tmp_path.rglob("*")) == before and not Path("/tmp/escape-abs").exists()


def test_a_bare_name_and_weights_slash_name_mean_the_same_run(weights_dir):
    assert output_dir("copy") == weights_dir / "copy"
    assert output_dir(weights_dir / "copy") == weights_dir / "copy"


def test_a_write_that_fails_leaves_no_run_and_the_old_run_whole(tmp_path):
    def broken(folder: Path) -> None:
        (folder / "config.json").write_text("{}")
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        write_run(tmp_path / "fresh", broken)
    assert not (tmp_path / "fresh").exists() and list(tmp_path.iterdir()) == []
    old = saved(tmp_path, "kept")
    with pytest.raises(RuntimeError):
        write_run(old, broken, replace=True)
    assert check_run(old) is None and load_run(old).model is not None
    with pytest.raises(FileExistsError):
        write_run(old, lambda folder: None)


def test_leftovers_of_a_crash_are_cleaned_and_a_run_moved_aside_is_put_back(tmp_path):
    run = saved(tmp_path, "mine")
    (tmp_path / ".other.tmp-abc").mkdir()
    run.rename(tmp_path / ".mine.old-1234")  # killed between the two renames of a replacement
    done = clean_leftovers(tmp_path, older_than_s=0)  # names without a writer: tidied by age
    assert len(done) == 2 and check_run(tmp_path / "mine") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]


def test_one_job_holds_a_run_name_and_a_dead_holders_name_is_free(tmp_path):
    with reserve(tmp_path / "same") as path:
        assert is_reserved(path)
        with pytest.raises(FileExistsError, match="Another job is already training"), reserve(tmp_path / "same"):
            pass
    assert not is_reserved(tmp_path / "same")
    (tmp_path / ".ghost.lock").write_text(json.dumps({"pid": 2**22 + 12345}))  # a process that is gone
    with reserve(tmp_path / "ghost"):
        pass
    saved(tmp_path, "taken")
    with pytest.raises(FileExistsError, match="already exists"), reserve(tmp_path / "taken"):
        pass


def test_a_diverging_training_names_the_step_keeps_the_last_finite_weights_and_prints_no_traceback(weights_dir):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "model_zoo", "train", "--out", "boom", "--lr", "1", "--warmup", "0", "--steps", "200",
         "--no-progress"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "error: Training diverged at step" in done.stderr
    step = int(done.stderr.split("diverged at step ")[1].split(":")[0])
    if (weights_dir / "boom").exists():  # the last weights whose loss was healthy
        run = load_run(weights_dir / "boom")
        kept = run.history[-1]["step"]
        assert kept < step and f"(step {kept}) are saved" in done.stderr
        assert all(bool(p.isfinite().all()) for p in run.model.parameters())
    else:
        assert "Nothing was saved" in done.stderr


def test_killing_the_cli_at_random_moments_leaves_no_run_or_a_whole_one(weights_dir):
    rng = random.Random(0)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "model_zoo", "train", "--out", "killed", "--steps", "400", "--checkpoint-every",
               "1", "--eval-every", "1000", "--no-progress", *TINY]  # fmt: skip
    existed = False
    for attempt in range(10):
        process = subprocess.Popen([*command, *(["--overwrite"] if attempt else [])], cwd=ROOT, env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
        deadline = time.monotonic() + 60
        while not (weights_dir / "killed").exists() and not existed and time.monotonic() < deadline:
            time.sleep(0.05)  # wait for the first save, then kill at a random moment after it
        time.sleep(rng.uniform(0.0, 0.5))
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        clean_leftovers(weights_dir)
        run = weights_dir / "killed"
        if existed:
            assert run.is_dir(), f"attempt {attempt}: a replaced run disappeared"
        if run.exists():
            existed = True
            assert check_run(run) is None, check_run(run)
            assert main(["decode", "killed", "1 2"]) == 0
        assert not [p for p in weights_dir.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock")]


def test_the_sidebar_and_the_pickers_mark_damaged_runs_and_every_page_still_draws(weights_dir):
    from streamlit.testing.v1 import AppTest

    expected = damage(weights_dir)
    saved(weights_dir, "good")
    at = AppTest.from_file(ROOT / "streamlit_app.py", default_timeout=120).run()
    assert not at.exception, at.exception
    sidebar = " ".join(str(m.value) for m in at.sidebar.markdown)
    assert "`good`" in sidebar
    for name in ("truncated", "not-json", "run-json-list"):
        assert f"`{name}` · saved · **unreadable**" in sidebar, name
    assert len(expected) >= 9
    for name in ("build", "train", "decode", "inspect", "finetune", "compare"):
        at.switch_page(f"pages/{name}.py").run()
        assert not at.exception, (name, at.exception)
    at.switch_page("pages/inspect.py").run()
    at.selectbox(key="inspect_model").set_value("wrong-shapes (saved) — unreadable").run()
    assert not at.exception
    assert "don't belong together" in at.error[0].value


STUDENT = "_students/s-abcdefgh"
KILLED_SAVE = """
import sys, time
from pathlib import Path
from model_zoo.run_folder import write_run

def write(folder):
    (folder / "model.safetensors").write_bytes(b"half a model")
    Path(sys.argv[2]).touch()  # the save has begun: kill me now
    time.sleep(600)

write_run(Path(sys.argv[1]), write)
"""


def saving_in_another_process(out: Path, tmp_path: Path) -> subprocess.Popen:
    """A process (a CLI training, say) in the middle of saving run `out`, until it is killed."""
    started = tmp_path / f"started-{out.parent.name}"
    process = subprocess.Popen([sys.executable, "-c", KILLED_SAVE, str(out), str(started)], cwd=ROOT)
    deadline = time.monotonic() + 120
    while not started.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert started.exists(), "the save never began"
    return process


def killed_mid_save(out: Path, tmp_path: Path) -> int:
    """Start a save of run `out` in another process and SIGKILL it mid-write; returns its (dead) pid."""
    process = saving_in_another_process(out, tmp_path)
    process.send_signal(signal.SIGKILL)
    process.wait(30)
    return process.pid


def test_leftovers_of_killed_saves_are_tidied_in_every_folder_of_runs(weights_dir, tmp_path):
    from model_zoo.run_folder import clean_all_leftovers

    dead = [killed_mid_save(weights_dir / place / "run", tmp_path) for place in (STUDENT, "_examples", ".")]
    class_run = saved(weights_dir / "_class", "published")
    class_run.rename(weights_dir / "_class" / f".published.old-p{dead[0]}-0123abcd")  # killed between two renames
    leftovers = [p for p in weights_dir.rglob(".*") if p.is_dir()]
    assert len(leftovers) == 4, leftovers
    done = clean_all_leftovers(weights_dir)
    assert len(done) == 4 and not [p for p in weights_dir.rglob(".*") if p.is_dir()]
    assert check_run(weights_dir / "_class" / "published") is None  # put back whole
    assert not (weights_dir / STUDENT / "run").exists()  # nothing half-written appears either


def test_tidying_keeps_the_save_of_another_live_process_and_removes_it_once_that_process_is_killed(
    weights_dir, tmp_path
):
    from model_zoo.run_folder import clean_all_leftovers

    process = saving_in_another_process(weights_dir / "cli-run", tmp_path)
    try:
        [temporary] = [p for p in weights_dir.iterdir() if p.name.startswith(".cli-run.tmp-")]
        assert clean_all_leftovers(weights_dir) == [] and clean_leftovers(weights_dir, older_than_s=0) == []
        assert temporary.is_dir()  # the app starting now must not pull the folder from under the save
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    assert len(clean_all_leftovers(weights_dir)) == 1 and not temporary.exists()


def test_tidying_keeps_the_temporary_folder_of_a_save_still_running(weights_dir):
    import threading

    from model_zoo.run_folder import clean_all_leftovers

    writing, finish = threading.Event(), threading.Event()

    def slow_write(folder: Path) -> None:
        tiny_model().save(folder)
        TASK.vocab.save(folder)
        writing.set()
        assert finish.wait(60)

    for place in (weights_dir, weights_dir / STUDENT):  # another process's save (the CLI's), in each place
        saving = threading.Thread(target=write_run, args=(place / "busy", slow_write))
        writing.clear(), finish.clear()
        saving.start()
        assert writing.wait(60)
        assert clean_all_leftovers(weights_dir) == []
        assert clean_leftovers(place, older_than_s=0) == []  # the app's old start-up call: kept too
        finish.set()
        saving.join(60)
        assert check_run(place / "busy") is None  # the save finished whole


def test_a_second_train_to_the_same_out_is_refused_while_the_first_holds_it(weights_dir, capsys):
    command = ["train", "--out", "same", "--steps", "2", "--eval-every", "2", "--no-progress", *TINY]
    with reserve(weights_dir / "same"):  # the first training, still running
        assert main(command) == 1
        assert "Another job is already training a run called 'same'" in capsys.readouterr().err
        assert not (weights_dir / "same").exists()
    assert main(command) == 0 and check_run(weights_dir / "same") is None  # once it is free


def test_making_a_starter_run_is_refused_while_another_job_makes_it(weights_dir):
    from model_zoo.classroom.starter import examples_folder, make_starter_runs

    with reserve(examples_folder(weights_dir) / "copy"), pytest.raises(FileExistsError, match="Another job"):
        make_starter_runs(weights_dir, names=["copy"], train_overrides={"steps": 2, "eval_every": 2})
    assert not (examples_folder(weights_dir) / "copy").exists()
