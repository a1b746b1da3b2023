"""`model_zoo.run_schema`: a run's file that parses but has the wrong shape makes that run unreadable
with the reason, in the listing, in `python -m model_zoo runs` and in every loader, and never crashes
whatever opens it (nor the listing of every other run). A fine-tuning run whose config or labels
disagree with its weights is unreadable too, never loaded with random weights."""

import json
import shutil
from pathlib import Path

import pytest
from hf_tiny import trained_run

from model_zoo import Transformer
from model_zoo.cli import main
from model_zoo.hf.compare import load_comparison
from model_zoo.hf.inference import load_finetuned
from model_zoo.run_folder import check_files, list_runs
from model_zoo.toy.runs import check_run, load_run, save_run
from model_zoo.toy.tasks import make_task
from model_zoo.toy.train_config import TrainConfig
from model_zoo.utils import read_json

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TASK = make_task("copy", n_symbols=5, max_len=4, n_heldout=8)
DEEP = "[" * 100_000 + "]" * 100_000  # parses in no Python without a RecursionError


def scratch_run(root: Path, name: str) -> Path:
    model = Transformer(TASK.model_config(d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32))
    history = [{"step": 1, "loss": 2.0}]
    return save_run(root / name, model, TASK, history, TrainConfig(steps=10, warmup=0))


def finetune_run(root: Path, name: str) -> Path:
    result, _ = trained_run("bert", "custom")
    return Path(shutil.copytree(result.run_dir, root / name))


def edit_json(path: Path, change) -> None:
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


# name -> (kind, file, how the file is damaged, words the reason must contain)
SCRATCH_DAMAGE = {
    "run-json-a-list": ("run.json", "[1]", "run.json is not a JSON object"),
    "run-json-deep": ("run.json", DEEP, "nested too deeply"),
    "history-numbers": ("history.json", "[1, 2]", "history.json [0] is not a JSON object"),
    "steps-negative": ("train_config.json", None, "steps=-5"),
}
FINETUNE_DAMAGE = {
    "ft-history-numbers": ("history.json", "[1, 2]", "history.json is not a JSON object"),
    "ft-metrics-list": ("metrics.json", "[]", "metrics.json is not a JSON object"),
    "ft-no-texts": ("comparison.json", None, "comparison.json 'texts' is missing"),
    "ft-wider-config": ("config.json", None, "config.json says the model is 64 wide"),
    "ft-three-labels": ("labels.json", '["negative", "positive", "neutral"]', "labels.json lists 3 labels"),
    "ft-deep-tokenizer": ("tokenizer_config.json", DEEP, "nested too deeply"),
}
EDITS = {
    "steps-negative": lambda c: {**c, "steps": -5},
    "ft-no-texts": lambda c: {k: v for k, v in c.items() if k != "texts"},
    "ft-wider-config": lambda c: {**c, "hidden_size": 64},
}


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> Path:
    """A weights folder with a good run of each kind and one damaged run for each case above."""
    root = tmp_path_factory.mktemp("weights")
    scratch_run(root, "good")
    finetune_run(root, "ft-good")
    for cases, make in ((SCRATCH_DAMAGE, scratch_run), (FINETUNE_DAMAGE, finetune_run)):
        for name, (file, text, _) in cases.items():
            run = make(root, name)
            if text is None:
                edit_json(run / file, EDITS[name])
            else:
                (run / file).write_text(text)
    return root


def test_read_json_refuses_absurd_nesting_with_a_value_error_not_a_recursion_error(tmp_path):
    (tmp_path / "deep.json").write_text(DEEP)
    with pytest.raises(ValueError, match="nested too deeply"):
        read_json(tmp_path / "deep.json")


@pytest.mark.parametrize("name", [*SCRATCH_DAMAGE, *FINETUNE_DAMAGE])
def test_a_file_of_the_wrong_shape_lists_its_run_as_unreadable_with_the_reason(damaged, name):
    found = {r.name: r for r in list_runs(damaged, check=check_run)}
    words = {**SCRATCH_DAMAGE, **FINETUNE_DAMAGE}[name][2]
    assert found[name].error is not None and words in found[name].error, found[name].error
    assert found["good"].readable and found["ft-good"].readable  # everything else still works


def test_python_dash_m_model_zoo_runs_lists_every_damaged_run_and_the_good_ones(damaged, capsys):
    assert main(["runs", "--root", str(damaged)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    for name in [*SCRATCH_DAMAGE, *FINETUNE_DAMAGE]:
        assert "unreadable:" in lines[name], lines[name]
    assert "unreadable" not in lines["good"] and "unreadable" not in lines["ft-good"]


@pytest.mark.parametrize("name", list(SCRATCH_DAMAGE))
def test_load_run_refuses_what_the_listing_marks_unreadable(damaged, name):
    with pytest.raises(ValueError, match="cannot be read"):
        load_run(damaged / name)


@pytest.mark.parametrize("name", list(FINETUNE_DAMAGE))
def test_a_damaged_fine_tuning_run_is_never_loaded(damaged, name):
    with pytest.raises(ValueError, match="cannot be read"):
        load_finetuned(damaged / name, attention=False)


def test_a_config_that_disagrees_with_the_weights_is_refused_even_past_the_listing(damaged, tmp_path):
    """The loader's own guard: a run whose config.json widens the model (and whose listing check is
    skipped) still never loads with re-initialised tensors."""
    from model_zoo.hf.models import load_pretrained

    run = finetune_run(tmp_path, "wide")
    edit_json(run / "config.json", EDITS["ft-wider-config"])
    with pytest.raises(ValueError, match="don't belong together"):
        load_pretrained(run, "classification", ["negative", "positive"])


def test_a_new_head_on_a_base_model_is_still_initialised(damaged):
    from hf_tiny import tiny_bert_dir

    from model_zoo.hf.models import load_pretrained

    _, model, _ = load_pretrained(tiny_bert_dir(), "classification", ["a", "b", "c"], seed=0)
    assert model.classifier.out_features == 3


def test_the_comparison_loader_names_the_damaged_file(damaged):
    with pytest.raises(ValueError, match="comparison.json 'texts' is missing"):
        load_comparison(damaged / "ft-no-texts")
    with pytest.raises(ValueError, match="metrics.json is not a JSON object"):
        load_comparison(damaged / "ft-metrics-list")
    assert load_comparison(damaged / "ft-good")["metrics"]["after"]


def test_the_listing_check_accepts_every_run_the_project_saves(damaged):
    assert check_files(damaged / "ft-good") is None and check_run(damaged / "good") is None
    result, _ = trained_run("t5", "custom")
    assert check_files(result.run_dir) is None
    assert load_finetuned(result.run_dir, attention=False).task == "text2text"


def test_the_compare_page_says_what_is_wrong_with_a_damaged_comparison(weights_dir):
    from streamlit.testing.v1 import AppTest

    run = finetune_run(weights_dir, "ft-damaged")
    edit_json(run / "comparison.json", EDITS["ft-no-texts"])
    at = AppTest.from_file(Path(__file__).resolve().parent.parent / "streamlit_app.py", default_timeout=180).run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    errors = " ".join(str(e.value) for e in at.error)
    assert "Something unexpected" not in errors
    assert "'ft-damaged' cannot be read: comparison.json 'texts' is missing" in errors, errors


def test_a_damaged_attention_snapshots_file_or_history_value_makes_the_run_unreadable(tmp_path):
    from model_zoo.toy.training import train

    run = tmp_path / "snapshots"
    model = Transformer(TASK.model_config(d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32))
    train(model, TASK, TrainConfig(steps=4, warmup=0, eval_every=2, checkpoint_every=2), checkpoint_dir=run)
    assert check_run(run) is None and (run / "attention_snapshots.safetensors").is_file()
    snapshots = (run / "attention_snapshots.safetensors").read_bytes()
    (run / "attention_snapshots.safetensors").write_bytes(snapshots[:-40])
    assert "attention_snapshots.safetensors is truncated" in check_run(run)
    (run / "attention_snapshots.safetensors").write_bytes(snapshots)
    edit_json(run / "history.json", lambda h: [{**h[0], "loss": "low"}, *h[1:]])
    assert check_run(run) == "history.json [0] 'loss' must be a number, not text"
