"""The same blocks as GPT: a character-level language model on Hamlet, trained decoder-only, and
generation one character at a time with the KV cache, temperature, top-k and top-p."""

import json
import threading

import pytest
import torch
from app_page import open_page  # tests/app_page.py

from model_zoo.scratch.transformer import DecoderOnlyTransformer, build_model
from model_zoo.toy.decoding import (
    filter_logits,
    generate,
    generate_text,
    next_token_distribution,
    top_k_filter,
    top_p_filter,
)
from model_zoo.toy.runs import check_run, load_run
from model_zoo.toy.settings import settings_for
from model_zoo.toy.tasks import HamletTask, TextBatch, make_task, task_from_dict
from model_zoo.toy.train_config import TrainConfig
from model_zoo.toy.training import train
from model_zoo.utils import without_onednn


@pytest.fixture(scope="module")
def task():
    return HamletTask(block_size=16)


def tiny_model(task, seed=0):
    torch.manual_seed(seed)
    return build_model(task.model_config(d_model=32, n_heads=2, n_decoder_layers=1, d_ff=64, norm_first=True))


# -- the task -------------------------------------------------------------------------------------
def test_hamlet_batches_are_windows_whose_targets_shift_by_one(task):
    batch = task.train_batch(4, torch.Generator().manual_seed(0))
    assert isinstance(batch, TextBatch) and batch.tokens.shape == batch.targets.shape == (4, 16)
    assert torch.equal(batch.tokens[:, 1:], batch.targets[:, :-1])
    text = task.vocab.to_text(batch.tokens[0].tolist() + batch.targets[0, -1:].tolist())
    assert text in task.vocab.to_text(task.train_ids.tolist())  # a real stretch of the play


def test_hamlet_heldout_is_the_end_of_the_play_and_never_trained_on(task):
    assert len(task.heldout_ids) == pytest.approx(0.1 * (len(task.train_ids) + len(task.heldout_ids)), abs=1)
    assert task.vocab.to_text(task.heldout_ids.tolist()).endswith("a peal of ordnance is shot off")
    g = torch.Generator().manual_seed(1)
    for _ in range(20):  # every training window lies inside the first 90%
        starts_ok = task.train_batch(8, g).tokens.numel() == 8 * 16
        assert starts_ok
    first = task.heldout_batches()[0]
    assert torch.equal(first.tokens[0], task.heldout_ids[:16])


def test_character_vocabulary_keeps_spaces_and_newlines_and_round_trips(task):
    line = "HAMLET\nTo be, or not to be: that is the question:"
    ids, unknown = task.vocab.encode(line)
    assert unknown == [] and task.vocab.to_text(ids) == line
    assert "\n" in task.vocab.itos and " " in task.vocab.itos


def test_hamlet_task_is_rebuilt_from_its_description_and_builds_a_decoder_only_model(task):
    again = task_from_dict(task.to_dict())
    assert again.vocab == task.vocab and again.block_size == 16
    cfg = again.model_config()
    assert cfg.decoder_only and cfg.max_len == 16
    assert isinstance(build_model(cfg), DecoderOnlyTransformer)


# -- training -------------------------------------------------------------------------------------
def test_training_lowers_heldout_loss_and_reports_perplexity(task):
    model = tiny_model(task)
    seen = []
    history = train(
        model, task, TrainConfig(steps=60, batch_size=16, lr=3e-3, warmup=5, eval_every=30), on_step=seen.append
    )
    evaluations = [h for h in history if "heldout_loss" in h]
    assert [h["step"] for h in evaluations] == [30, 60] and len(seen) == 60
    first_loss = history[0]["loss"]
    assert evaluations[-1]["heldout_loss"] < first_loss - 0.5  # from ~ln(70) = 4.2 towards 3
    assert evaluations[-1]["perplexity"] == pytest.approx(torch.tensor(evaluations[-1]["heldout_loss"]).exp().item())
    assert "exact_match" not in evaluations[-1]


def test_a_saved_hamlet_run_loads_back_as_a_decoder_only_model(task, tmp_path):
    model = tiny_model(task)
    train(model, task, TrainConfig(steps=4, batch_size=4, eval_every=2), checkpoint_dir=tmp_path / "lm")
    assert check_run(tmp_path / "lm") is None
    run = load_run(tmp_path / "lm")
    assert isinstance(run.model, DecoderOnlyTransformer)
    assert run.make_task().to_dict() == task.to_dict() and run.vocab == task.vocab
    assert "heldout_loss" in run.history[-1]


def test_hamlet_settings_build_the_measured_default_model():
    settings = settings_for("hamlet")
    made = settings.make_task()
    cfg = settings.model_config(made)
    assert cfg.decoder_only and cfg.tgt_vocab_size == len(made.vocab)
    assert settings.train.stop_at_exact_match is None  # a language model has no exact match to stop at


# -- the filters ------------------------------------------------------------------------------------
def test_top_k_keeps_exactly_k_tokens_even_with_ties():
    logits = torch.tensor([1.0, 3.0, 3.0, 3.0, 0.5, 2.0])
    kept = torch.isfinite(top_k_filter(logits, 2))
    assert int(kept.sum()) == 2 and bool(kept[[1, 2, 3]].sum() == 2)
    assert torch.equal(top_k_filter(logits, None), logits)


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    logits = probs.log()
    assert torch.isfinite(top_p_filter(logits, 0.5)).tolist() == [True, False, False, False]
    assert torch.isfinite(top_p_filter(logits, 0.7)).tolist() == [True, True, False, False]
    assert torch.isfinite(top_p_filter(logits, 0.81)).tolist() == [True, True, True, False]
    assert torch.isfinite(top_p_filter(logits[[3, 1, 0, 2]], 0.7)).tolist() == [False, True, True, False]  # any order
    assert torch.isfinite(top_p_filter(logits, 0.01)).sum() == 1  # the most likely token always stays


def test_temperature_sharpens_and_flattens_and_zero_is_argmax():
    logits = torch.tensor([2.0, 1.0, 0.0])
    cold, hot = filter_logits(logits, 0.5).softmax(-1), filter_logits(logits, 2.0).softmax(-1)
    assert cold[0] > logits.softmax(-1)[0] > hot[0]
    assert filter_logits(logits, 0.0).softmax(-1).tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="temperature"):
        filter_logits(logits, -1.0)
    with pytest.raises(ValueError, match="top_p"):
        filter_logits(logits, 1.0, top_p=1.5)


# -- generation -----------------------------------------------------------------------------------
def test_kv_cache_generation_equals_recomputing_the_prefix(task):
    model = tiny_model(task)
    prompt = task.vocab.encode("HAMLET\n")[0]
    for temperature, top_k, top_p in ((1.0, None, None), (0.8, 5, 0.9)):
        cached = generate(model, prompt, 9, temperature, top_k, top_p, seed=3, use_cache=True)
        recomputed = generate(model, prompt, 9, temperature, top_k, top_p, seed=3, use_cache=False)
        assert cached == recomputed and len(cached) == 9


def test_generation_decodes_on_one_thread_and_gives_the_callers_threads_back(task):
    """Decoding one sequence is ~100 tiny operations a step: generate() runs them on one torch thread
    (waking a second one costs more than the work) and puts the caller's setting back."""
    model = tiny_model(task)
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        generate(model, task.vocab.encode("HAMLET\n")[0], 5, seed=0)
        assert seen == [1] * 5 and torch.get_num_threads() == 2
        torch.set_num_threads(1)
        generate(model, task.vocab.encode("HAMLET\n")[0], 3, seed=0, use_cache=False, threads=2)
        assert seen[5:] == [2] * 3 and torch.get_num_threads() == 1
        for bad in (0, 1.5, True):
            with pytest.raises(ValueError, match="threads"):
                generate(model, [1], 2, threads=bad)
    finally:
        torch.set_num_threads(before)


def test_generation_runs_without_onednn_and_puts_the_setting_back(task):
    """oneDNN sets up its GELU anew on each call, which costs a one-token step more than the work:
    generate() runs on PyTorch's own kernels and leaves the switch as the caller had it."""
    model = tiny_model(task)
    seen = []
    model.register_forward_pre_hook(lambda module, args: seen.append(torch.backends.mkldnn.enabled))
    assert torch.backends.mkldnn.enabled
    generate(model, task.vocab.encode("HAMLET\n")[0], 4, seed=0)
    generate(model, task.vocab.encode("HAMLET\n")[0], 2, seed=0, use_cache=False)
    assert seen == [False] * 6 and torch.backends.mkldnn.enabled
    torch.backends.mkldnn.enabled = False
    try:
        generate(model, [1], 2, seed=0)
        assert not torch.backends.mkldnn.enabled  # off before, off after
    finally:
        torch.backends.mkldnn.enabled = True


def test_without_onednn_computes_the_same_gelu_model_to_rounding(task):
    torch.manual_seed(0)
    model = build_model(task.model_config(d_model=32, n_heads=2, n_decoder_layers=2, d_ff=64, activation="gelu"))
    ids = torch.tensor([task.vocab.encode("To be, or not to")[0]])  # 16: the window
    with torch.no_grad():
        with_onednn = model.eval()(ids).logits
        with without_onednn():
            assert not torch.backends.mkldnn.enabled
            without = model(ids).logits
    assert torch.backends.mkldnn.enabled
    torch.testing.assert_close(without, with_onednn, atol=1e-6, rtol=1e-6)


def test_overlapping_callers_leave_onednn_off_until_the_last_one_leaves():
    """The switch is process-wide: a page decoding in one thread must not turn it back on under
    another thread still decoding, nor leave it off after both."""
    entered, release, states = threading.Event(), threading.Event(), []

    def other():
        with without_onednn():
            entered.set()
            release.wait(timeout=30)
            states.append(torch.backends.mkldnn.enabled)

    thread = threading.Thread(target=other)
    thread.start()
    assert entered.wait(timeout=30)
    with without_onednn():
        states.append(torch.backends.mkldnn.enabled)
    states.append(torch.backends.mkldnn.enabled)  # the other thread is still inside
    release.set()
    thread.join(timeout=30)
    assert states == [False, False, False] and torch.backends.mkldnn.enabled
    with pytest.raises(RuntimeError), without_onednn():
        raise RuntimeError("a failed step")
    assert torch.backends.mkldnn.enabled


def test_cache_gives_the_same_logits_as_the_full_pass(task):
    model = tiny_model(task).eval()
    ids = torch.tensor([task.vocab.encode("To be, or not")[0]])
    with torch.no_grad():
        full = model(ids).logits[0]  # (T, V)
        cache = model.new_cache()
        stepped = torch.cat([model(ids[:, i : i + 1], cache=cache).logits[0] for i in range(ids.size(1))])
    torch.testing.assert_close(stepped, full, atol=1e-5, rtol=1e-5)


def test_a_tiny_temperature_generates_what_greedy_does(task):
    model = tiny_model(task)
    prompt = task.vocab.encode("KING\n")[0]
    greedy = generate(model, prompt, 12, temperature=0.0)
    assert generate(model, prompt, 12, temperature=1e-4, seed=7) == greedy
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(12):  # argmax by hand, the whole prefix each time
            ids.append(int(model.eval()(torch.tensor([ids[-16:]])).logits[0, -1].argmax()))
    assert ids[len(prompt) :] == greedy


def test_generation_runs_past_the_window_and_top_k_one_is_greedy(task):
    model = tiny_model(task)
    prompt = task.vocab.encode("HAMLET.")[0]
    assert len(generate(model, prompt, 40, temperature=1.0, top_k=1)) == 40  # 47 > the window of 16
    text = generate_text(model, task.vocab, "HAMLET.", 40, temperature=1.0, top_k=1)
    assert text.startswith("HAMLET.")
    greedy = generate_text(model, task.vocab, "HAMLET.", 40, temperature=0.0)
    assert text == greedy


def test_next_token_distribution_shows_what_the_filters_cut(task):
    model = tiny_model(task)
    dist = next_token_distribution(model, task.vocab, "HAMLET\n", temperature=1.0, top_k=3)
    assert dist.before.sum().item() == pytest.approx(1.0) and dist.after.sum().item() == pytest.approx(1.0)
    assert int(dist.kept.sum()) == 3 and len(dist.tokens) == len(task.vocab)
    assert torch.equal(dist.kept, dist.before >= dist.before.topk(3).values[-1])
    assert dist.entropy_after < dist.entropy_before


def test_an_unknown_prompt_character_is_a_clear_error(task):
    with pytest.raises(ValueError, match="never saw"):
        generate_text(tiny_model(task), task.vocab, "HAMLET é", 5)


def test_make_task_knows_hamlet():
    assert make_task("hamlet", block_size=8).kind == "lm"


def test_a_language_models_predictions_read_as_text_under_the_prompt(task, weights_dir):
    """Inspect shows what the model expects after each character as text ("AMLET⏎…" under
    "HAMLET⏎…"), not spaced out like words: each output character is the argmax after its position."""
    from model_zoo.views.attention import attention_for_text

    model = tiny_model(task)
    seen = attention_for_text(model, task.vocab, "HAMLET\nTo be")
    with torch.no_grad():
        ids = torch.tensor([task.vocab.encode("HAMLET\nTo be")[0]])
        expected = "".join(task.vocab.itos[i] for i in model.eval()(ids).logits[0].argmax(-1).tolist())
    assert seen.output_text == expected and len(expected) == len("HAMLET\nTo be")
    _saved_hamlet_run(weights_dir)
    at = open_page("inspect")
    run = load_run(weights_dir / "tiny-hamlet")
    shown = attention_for_text(run.model, run.vocab, at.text_area(key="inspect_text").value).output_text
    assert shown in [block.value for block in at.code]  # as text, in a block that keeps its line breaks


def test_a_language_models_spaces_and_newlines_show_in_every_label(task, weights_dir):
    """A character model reads spaces and newlines: the attention map's axes, the token pickers,
    the journey and the sampling chart draw them as ␣ and ↵, never as a blank label."""
    from model_zoo.views.attention import attention_for_text, attention_map
    from model_zoo.views.journey import quote
    from model_zoo.views.sampling import shown_token

    seen = attention_for_text(tiny_model(task), task.vocab, "HAMLET\nTo be")
    frame = attention_map(seen.attentions, "decoder_self", 0, *seen.axes("decoder_self"))
    labels = set(frame["query"]) | set(frame["key"])
    assert {"6: ↵", "9: ␣"} <= labels and not any(label.endswith((" ", "\n")) for label in labels)
    assert (quote("\n"), quote(" "), shown_token("\n"), shown_token(" ")) == ("“↵”", "“␣”", "↵ newline", "␣ space")
    _saved_hamlet_run(weights_dir)
    options = open_page("heads").selectbox(key="heads_query").options  # the window's last 16 characters
    assert "3: ␣" in options and not any(option.endswith((" ", "\n")) for option in options)


def test_a_text_longer_than_the_window_says_what_every_view_leaves_out(task):
    from model_zoo.views.attention import attention_for_text, left_out_of_window

    model = tiny_model(task)
    window = model.cfg.max_len
    text = "HAMLET\n" + "To be, or not to be, that is the question"[: window - 2]  # window + 5 characters
    note = left_out_of_window(model, task.vocab, text)
    seen = attention_for_text(model, task.vocab, text)
    assert seen.target_tokens[0] == text[5] and len(seen.target_tokens) == window  # what the views read
    assert note == (
        f"The model reads at most {window} characters, the window it was trained on: the first 5 of this text "
        f"are left out, so position 0 is {text[5]!r}."
    )
    assert left_out_of_window(model, task.vocab, text[5:]) is None  # it fits
    copy = make_task("copy", n_symbols=6, max_len=6)
    assert left_out_of_window(build_model(copy.model_config(d_model=16, n_heads=2)), copy.vocab, "1 2 3") is None


# -- the app --------------------------------------------------------------------------------------
def _saved_hamlet_run(weights_dir, name="tiny-hamlet"):
    task = HamletTask(block_size=16)  # trained a little, so it has history and attention snapshots
    train(tiny_model(task), task, TrainConfig(steps=4, batch_size=4, eval_every=2), checkpoint_dir=weights_dir / name)
    return name


def _saved_copy_run(folder):
    """A tiny encoder-decoder run (copy), trained two steps, saved in `folder`."""
    copy = make_task("copy", n_symbols=6, max_len=6)
    torch.manual_seed(0)
    model = build_model(copy.model_config(d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32))
    train(model, copy, TrainConfig(steps=2, batch_size=4, eval_every=2), checkpoint_dir=folder)


def test_step_through_of_a_language_model_shows_the_generation_panel(weights_dir):
    _saved_hamlet_run(weights_dir)
    at = open_page("decode")
    assert not at.exception, at.exception
    assert at.text_area(key="decode_gen_prompt").value == "HAMLET\n"
    at.slider(key="decode_gen_top_k").set_value(5).run()
    assert not at.exception, at.exception
    assert any(m.value == "5 of 70" for m in at.metric)
    at.button(key="decode_gen_sample20").click().run()
    assert int(at.dataframe[0].value["times drawn"].sum()) == 20
    at.number_input(key="decode_gen_n_chars").set_value(30).run()
    at.button(key="decode_gen_generate").click().run()
    assert not at.exception, at.exception
    assert at.code[0].value.startswith("HAMLET\n")


@pytest.mark.parametrize(
    "page, key, before",
    [("inspect", "inspect_text", {}), ("journey", "journey_text", {}), ("heads", "heads_text", {}),
     ("explain", "explain_text", {"explain_mode": "scratch"})],
)  # fmt: skip
def test_a_language_models_input_box_keeps_its_line_breaks(weights_dir, page, key, before):
    """A newline is a character the Hamlet model reads: its input box is a text area (a one-line
    box drops the break the moment the student edits it), and an edited prompt keeps its breaks."""
    _saved_hamlet_run(weights_dir)
    at = open_page(page)
    for name, value in before.items():
        at.session_state[name] = value
    at.run()
    assert key not in [box.key for box in at.text_input]  # not a one-line box
    box = at.text_area(key=key)
    assert box.value == "HAMLET\nTo be, or not to be"
    box.set_value("HAMLET\nKing\nis").run()  # 14 characters: inside the 16-character window
    assert not at.exception, at.exception
    assert at.text_area(key=key).value == "HAMLET\nKing\nis"
    assert not [c for c in at.caption if "left out" in c.value]
    long = "HAMLET\n" + "To be, or not to be: " * 3
    at.text_area(key=key).set_value(long).run()
    assert not at.exception, at.exception
    assert [c for c in at.caption if f"the first {len(long) - 16} of this text are left out" in c.value]


INSPECT_TABS = ["Attention", "All heads", "Follow a token", "Positional encoding", "Embeddings", "Weights",
                "Gradient check", "Training dynamics", "Stable vs broken", "Attention over training", "Heads together"]  # fmt: skip


def test_every_inspect_tab_opens_on_a_language_model(weights_dir):
    _saved_hamlet_run(weights_dir)
    at = open_page("inspect")
    failed = {}
    for tab in INSPECT_TABS:
        at.session_state["inspect_tab"] = tab
        at.run()
        if at.exception:
            failed[tab] = at.exception[0].message
        elif at.error:
            failed[tab] = at.error[0].value
        if tab == "Training dynamics":
            assert "held-out loss" in [m.label for m in at.metric]
        if tab == "Attention":  # causal self-attention only: no encoder, no cross-attention
            assert len(at.selectbox(key="inspect_kind").options) == 1
        if tab == "Attention over training":  # the probe is a window of the play, not a source and its answer
            probe = [c.value for c in at.caption if c.value.startswith("The probe is")]
            assert probe and "held-out window of the play" in probe[0] and "teacher forcing" not in probe[0]
            assert not [c for c in at.caption if "cross-attention go from uniform" in c.value]
        if tab == "Embeddings":  # neighbours of a letter, not of the tab character the vocabulary starts with
            picked = at.selectbox(key="inspect_neighbour_token")
            assert picked.value.isalpha() and picked.options[:3] == ["⇥", "↵", "␣"]
        if tab == "Follow a token":  # opens on the last character, which has every earlier one to choose from
            token = at.selectbox(key="inspect_follow_token")
            assert token.value == len(token.options) - 1
            at.radio(key="inspect_follow_direction").set_value("to").run()  # the last one's column: the mask
            assert [c for c in at.caption if "only token" in c.value and "itself looks at it" in c.value]
            at.selectbox(key="inspect_follow_token").set_value(3).run()  # an earlier one's: who looks at it
            assert [c for c in at.caption if "looks hardest at token 3" in c.value]
    assert not failed, failed


def test_the_apps_training_job_trains_hamlet_and_reports_heldout_loss(tmp_path):
    from model_zoo.jobs.work import run_spec, train_spec

    task = HamletTask(block_size=16)
    model_cfg = task.model_config(d_model=32, n_heads=2, n_decoder_layers=1, d_ff=64)
    spec = train_spec(
        "lm", tmp_path / "lm", "hamlet", {"block_size": 16}, model_cfg, TrainConfig(steps=4, batch_size=4, eval_every=2)
    )
    result = run_spec(spec)
    assert result["steps"] == 4 and result["exact_match"] is None and result["heldout_loss"] > 0
    assert isinstance(load_run(tmp_path / "lm").model, DecoderOnlyTransformer)


def test_compare_page_opens_on_a_language_model_and_says_what_it_cannot_decode(weights_dir):
    _saved_hamlet_run(weights_dir)
    _saved_copy_run(weights_dir / "tiny-copy")
    at = open_page("compare")
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    assert any("is a language model (decoder-only): no source to decode" in i.value for i in at.info), [
        i.value for i in at.info
    ]
    # two runs side by side: the language model was evaluated, on held-out loss, and the page says so
    heldout = [e["heldout_loss"] for e in load_run(weights_dir / "tiny-hamlet").history if "heldout_loss" in e]
    table = next(d.value for d in at.dataframe if "run" in d.value.columns)
    assert table.loc[table["run"].str.startswith("tiny-hamlet"), "held-out loss"].tolist() == [heldout[-1]]
    caption = next(c.value for c in at.caption if "tiny-hamlet" in c.value and "final loss" in c.value)
    assert f"held-out loss {heldout[-1]:.3f} at step 4" in caption and "not evaluated" not in caption


def test_the_sidebar_lists_a_language_model_with_its_held_out_loss(weights_dir):
    _saved_hamlet_run(weights_dir)
    heldout = json.loads((weights_dir / "tiny-hamlet" / "run.json").read_text())["final_metrics"]["heldout_loss"]
    lines = " ".join(m.value for m in open_page().sidebar.markdown)
    assert f"`tiny-hamlet` · saved · scratch · held-out loss {heldout:.2f}" in lines


def test_train_page_offers_hamlet_with_its_settings_and_can_start_it(weights_dir):
    at = open_page("train")
    at.selectbox(key="train_task").set_value("hamlet").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.number_input(key="train_hamlet_block_size").value == 64
    assert at.number_input(key="train_hamlet_n_layers").value == settings_for("hamlet").model["n_decoder_layers"]
    assert at.number_input(key="train_hamlet_stop_at").disabled  # no exact match to stop at
    assert not at.button(key="train_start").disabled


def test_train_pages_data_view_shows_a_language_models_windows_and_no_encoder_depth(task):
    """Train's 'under the hood' views on a decoder-only run: the pairs are a window and the same window
    shifted by one character; the per-block measure of an encoder says there is none, and the token's
    input is its target embedding plus the position."""
    from model_zoo.views.depth import encoder_layer_changes, task_pairs
    from model_zoo.views.positions import token_input

    for pair in task_pairs(task, 3):
        assert pair.source == "" and len(pair.decoder_input) == len(pair.target) > 1
        assert pair.decoder_input[1:] == pair.target[:-1]
    model = tiny_model(task)
    with pytest.raises(ValueError, match="no encoder"):
        encoder_layer_changes(model, [4, 5, 6])
    parts = token_input(model, 5, 2, "e")
    expected = model.tgt_embed(torch.tensor([[5]]))[0, 0]
    assert torch.allclose(torch.tensor(parts.embedding), expected, atol=1e-6)


def test_self_attention_cache_writes_each_step_in_place_and_keeps_every_key():
    """The cache grows by doubling a buffer: a step writes only its own key and value (no copy of the
    earlier ones while there is room), and what it returns is every key so far, in order."""
    from model_zoo.scratch.attention import AttentionCache

    cache, keys, values = AttentionCache(), [], []
    pointers = set()
    for _ in range(40):
        k, v = torch.randn(2, 3, 1, 4), torch.randn(2, 3, 1, 4)  # (B, H, 1, dk): one new token
        keys.append(k)
        values.append(v)
        all_k, all_v = cache.update(k, v)
        assert torch.equal(all_k, torch.cat(keys, dim=2)) and torch.equal(all_v, torch.cat(values, dim=2))
        pointers.add(all_k.data_ptr())
    assert len(pointers) <= 3  # 16, 32, 64 positions: two regrowths in 40 steps, not one copy a step
    cache.reorder(torch.tensor([1, 0]))
    k, v = torch.randn(2, 3, 1, 4), torch.randn(2, 3, 1, 4)
    all_k, _ = cache.update(k, v)
    assert torch.equal(all_k, torch.cat([torch.cat(keys, dim=2)[[1, 0]], k], dim=2))


def test_the_lesson_opens_on_an_encoder_decoder_run_even_when_the_newest_is_the_language_model(weights_dir):
    """The lesson follows the paper's model (cross-attention, the source): with a copy run and a newer
    Hamlet run, it opens on the copy run; the pickers elsewhere still open on the newest."""
    _saved_copy_run(weights_dir / "tiny-copy")
    _saved_hamlet_run(weights_dir)  # saved last: the newest
    at = open_page("lesson")
    assert at.selectbox(key="lesson_model").value.startswith("tiny-copy")
    assert open_page("inspect").selectbox(key="inspect_model").value.startswith("tiny-hamlet")


def test_the_example_runs_are_offered_in_teaching_order(weights_dir):
    """Starter runs are made copy first and Hamlet last (the newest): the pickers still offer copy
    first, so a new student's first map is copy's diagonal."""
    from model_zoo.classroom.workspace import EXAMPLES

    _saved_copy_run(weights_dir / EXAMPLES / "copy")
    _saved_hamlet_run(weights_dir / EXAMPLES, name="hamlet")  # made last: the newest
    at = open_page("inspect")
    assert at.selectbox(key="inspect_model").options[:2] == ["copy (example)", "hamlet (example)"]
    assert at.selectbox(key="inspect_model").value == "copy (example)"


def test_lesson_on_a_language_model_reveals_what_applies_and_says_which_steps_need_an_encoder(weights_dir):
    _saved_hamlet_run(weights_dir)
    at = open_page("lesson")
    failed, encoder_steps = {}, {}
    for index in range(8):  # the steps that read a scratch run (9 and 10: a fine-tuning run)
        at.session_state["lesson_step"] = index
        at.run()
        answer = next(r for r in at.radio if r.key == f"lesson_answer_{index}")
        answer.set_value(answer.options[0]).run()
        at.button(key=f"lesson_reveal_{index}").click().run()
        if at.exception or at.error:
            failed[index] = at.exception[0].message if at.exception else at.error[0].value
        encoder_steps[index] = any("no encoder" in info.value for info in at.info)
    assert not failed, failed
    assert [i for i, says in encoder_steps.items() if says] == [3, 4]  # step-through of a source; cross-attention
