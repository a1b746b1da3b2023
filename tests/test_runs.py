"""Run folders: save -> load -> the same decode, safe names, no silent overwrite, listing."""

import json

import pytest
import torch

from model_zoo import Transformer
from model_zoo.run_folder import list_runs, run_path
from model_zoo.toy.decoding import decode_text
from model_zoo.toy.runs import load_run, save_run
from model_zoo.toy.tasks import make_task
from model_zoo.toy.train_config import TrainConfig
from model_zoo.toy.training import resumable, train
from model_zoo.utils import atomic_write_json

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def trained(tmp_path):
    task = make_task("reverse", n_symbols=6, max_len=6)
    torch.manual_seed(0)
    model = Transformer(task.model_config(d_model=32, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=64))
    cfg = TrainConfig(steps=40, batch_size=16, lr=3e-3, warmup=10, eval_every=20)
    history = train(model, task, cfg)
    return model, task, history, cfg


def test_save_then_load_gives_the_same_decoding(tmp_path, trained):
    model, task, history, cfg = trained
    path = save_run(tmp_path / "rev", model, task, history, cfg)
    assert sorted(p.name for p in path.iterdir()) == [
        "config.json",
        "history.json",
        "model.safetensors",
        "run.json",
        "train_config.json",
        "vocab.json",
    ]
    run = load_run(path)
    assert run.history == history and run.train_config == cfg and run.vocab == task.vocab
    assert json.loads((path / "run.json").read_text())["kind"] == "scratch"
    assert run.make_task().to_dict() == task.to_dict()
    for text in ("1 2 3", "6 5 4 3 2 1", "4"):
        for strategy in ("greedy", "beam"):
            assert (
                decode_text(run.model, run.vocab, text, strategy).token_ids
                == decode_text(model, task.vocab, text, strategy).token_ids
            )


@pytest.mark.parametrize("name", ["../escape", "a/b", "", " ", ".hidden", "x" * 65, "has space", "..", "a..b"])
def test_bad_run_names_are_refused(tmp_path, trained, name):
    model, task, history, cfg = trained
    with pytest.raises(ValueError, match="not allowed"):
        run_path(name, root=tmp_path)
    if name and "/" not in name:
        with pytest.raises(ValueError, match="not allowed"):
            save_run(tmp_path / name, model, task)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_run_is_not_overwritten_without_asking(tmp_path, trained):
    model, task, history, cfg = trained
    save_run(tmp_path / "mine", model, task, history, cfg)
    with pytest.raises(FileExistsError, match="already exists"):
        save_run(tmp_path / "mine", model, task, [], cfg)
    save_run(tmp_path / "mine", model, task, history[:3], cfg, overwrite=True)
    assert len(load_run(tmp_path / "mine").history) == 3


def test_runs_are_found_by_name_under_the_root(tmp_path, trained):
    model, task, history, cfg = trained
    save_run(tmp_path / "byname", model, task, history, cfg)
    assert load_run("byname", root=tmp_path).path == tmp_path / "byname"
    with pytest.raises(FileNotFoundError, match="runs"):
        load_run("missing", root=tmp_path)


def test_list_runs_shows_scratch_and_fine_tuning_runs_with_their_kind(tmp_path, trained):
    model, task, history, cfg = trained
    save_run(tmp_path / "scratch-one", model, task, history, cfg)
    finetuned = tmp_path / "sentiment"
    atomic_write_json(finetuned / "labels.json", ["negative", "positive"])
    atomic_write_json(
        finetuned / "run.json",
        {"kind": "finetune", "task": "classification", "dataset": "rotten_tomatoes", "steps": 12},
    )
    (tmp_path / "not-a-run").mkdir()
    found = {r.name: r for r in list_runs(tmp_path)}
    assert set(found) == {"scratch-one", "sentiment"}
    assert found["scratch-one"].kind == "scratch" and found["scratch-one"].task == "reverse"
    assert found["scratch-one"].step == 40 and "exact_match" in found["scratch-one"].metrics
    assert (found["sentiment"].kind, found["sentiment"].task, found["sentiment"].step) == (
        "finetune",
        "rotten_tomatoes",
        12,
    )
    assert list_runs(tmp_path / "nowhere") == []


def test_a_damaged_run_names_the_broken_file(tmp_path, trained):
    model, task, history, cfg = trained
    path = save_run(tmp_path / "damaged", model, task, history, cfg)
    (path / "vocab.json").write_text("{not json")
    with pytest.raises(ValueError, match="vocab.json"):
        load_run(path)
    path = save_run(tmp_path / "damaged", model, task, history, cfg, overwrite=True)
    (path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="safetensors"):
        load_run(path)


def test_resume_run_continues_a_checkpointed_run(tmp_path):
    task = make_task("copy", n_symbols=5, max_len=5)
    torch.manual_seed(0)
    model = Transformer(task.model_config(d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32))
    train(model, task, TrainConfig(steps=4, batch_size=8), checkpoint_dir=tmp_path / "go-on")
    run, cfg = resumable(tmp_path / "go-on", steps=7)
    history = train(run.model, run.make_task(), cfg, checkpoint_dir=run.path, resume=True)
    assert [m["step"] for m in history] == list(range(1, 8))
    assert load_run(tmp_path / "go-on").info["step"] == 7
