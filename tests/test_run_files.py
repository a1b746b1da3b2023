"""A run folder described file by file, and the three lines that load it back, run for real."""

from __future__ import annotations

from hf_tiny import trained_run

from model_zoo import Transformer
from model_zoo.run_files import HOLDS, load_snippet, run_files, run_files_caption
from model_zoo.run_folder import WEIGHTS_FILE


def test_run_files_lists_the_real_files_with_their_real_sizes(tmp_path, tiny_run):
    folder = tiny_run(tmp_path / "copy", steps=4, eval_every=2, batch_size=8)
    files = run_files(folder)
    on_disk = {p.name: p.stat().st_size for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")}
    assert {f.name: f.size_bytes for f in files} == on_disk
    assert all(f.holds == HOLDS[f.name] for f in files)  # every file a scratch run writes is explained
    assert [f.size_bytes for f in files] == sorted(on_disk.values(), reverse=True)  # largest first
    assert WEIGHTS_FILE in on_disk
    assert f"{len(files)} files" in run_files_caption(files)


def test_the_three_line_snippets_load_a_scratch_and_a_fine_tuned_run(tmp_path, tiny_run):
    scratch = tiny_run(tmp_path / "copy", steps=4, eval_every=2, batch_size=8)
    snippet = load_snippet(scratch)
    assert len(snippet.splitlines()) == 3
    scope: dict = {}
    exec(snippet, scope)  # noqa: S102  the code the page shows, run as a student would
    assert isinstance(scope["model"], Transformer) and not scope["model"].training

    result, _ = trained_run("bert")
    snippet = load_snippet(result.run_dir)
    assert len(snippet.splitlines()) == 3
    scope = {}
    exec(snippet, scope)  # noqa: S102
    model, tokenizer = scope["model"], scope["tokenizer"]
    assert model.config.id2label == dict(enumerate(result.label_names))
    logits = model(**tokenizer(["a good film ."], return_tensors="pt")).logits
    assert logits.shape == (1, len(result.label_names))
    files = {f.name for f in run_files(result.run_dir)}
    assert {"model.safetensors", "labels.json", "tokenizer.json"} <= files


def test_caption_states_the_optimizer_state_against_the_weights(tmp_path, tiny_run):
    folder = tiny_run(tmp_path / "copy", steps=4, eval_every=2, batch_size=8)
    sizes = {f.name: f.size_bytes for f in run_files(folder)}
    ratio = sizes["trainer_state.safetensors"] / sizes[WEIGHTS_FILE]
    assert 1.5 < ratio < 3  # Adam's m and v: two numbers a weight
    assert f"{ratio:.1f}× the weights" in run_files_caption(run_files(folder))
