"""What a prediction rests on: Integrated Gradients (Captum) pass the completeness check on a tiny
real BERT classifier and on tiny scratch models, the attention rows shown are the models' own,
Spearman's ρ matches hand computations, the caption says what its numbers say, and the page works."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from model_zoo.scratch.transformer import Transformer, build_model
from model_zoo.toy.tasks import HamletTask, make_task
from model_zoo.views import attribution
from model_zoo.views.attention import attention_for_text, attention_rollout
from model_zoo.views.attribution import TokenAttribution, completeness_tolerance, spearman

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TIMEOUT = 180  # the page imports torch, transformers and captum on its first run
APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"
SENTENCE = "the film was witty and the plot was dull ."


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(scope="module")
def classifier_run(weights) -> Path:
    """A tiny BERT fine-tuned for two steps on the tiny CSV, saved as a run (as the app saves one)."""
    from hf_tiny import tiny_bert_dir, tiny_config

    from model_zoo.hf.finetune import finetune

    finetune(tiny_config(tiny_bert_dir(), epochs=1, max_steps=2), weights / "tiny-bert")
    return weights / "tiny-bert"


@pytest.fixture(scope="module")
def classifier(classifier_run):
    from model_zoo.hf.inference import load_finetuned

    return load_finetuned(classifier_run)


@pytest.fixture(scope="module")
def reverse():
    """A tiny untrained reverse model: completeness holds for any weights."""
    task = make_task("reverse", n_symbols=6, max_len=6, n_heldout=8)
    torch.manual_seed(0)
    return Transformer(task.model_config(d_model=16, n_heads=2, d_ff=32)), task.vocab


# -- completeness -----------------------------------------------------------------------------------
def test_classifier_attributions_sum_to_the_label_log_probabilitys_move_from_the_pad_baseline(classifier):
    from model_zoo.hf.attribution import classifier_attribution, pad_baseline

    result = classifier_attribution(classifier, SENTENCE)
    assert abs(result.delta) <= completeness_tolerance(result.output_move)
    assert result.attribution_sum - result.output_move == pytest.approx(result.delta, abs=1e-5)
    # the move recomputed through the model's own forward on token ids (not the embedding path)
    enc = classifier.tokenizer(SENTENCE, return_tensors="pt")
    with torch.no_grad():
        real = classifier.model(**enc).logits.log_softmax(-1)[0]
        base = classifier.model(**{**enc, "input_ids": pad_baseline(classifier, enc["input_ids"])}).logits
    label = int(real.argmax())  # the predicted label is the one explained
    assert result.output == classifier.label_names[label]
    assert result.output_move == pytest.approx(float(real[label] - base.log_softmax(-1)[0, label]), abs=1e-5)
    assert result.probability == pytest.approx(float(real[label].exp()), abs=1e-6)


def test_the_pad_baseline_keeps_cls_and_sep_and_pads_every_word(classifier):
    from model_zoo.hf.attribution import pad_baseline

    tok = classifier.tokenizer
    ids = tok("witty film", return_tensors="pt")["input_ids"]
    assert pad_baseline(classifier, ids)[0].tolist() == [
        tok.cls_token_id,
        tok.pad_token_id,
        tok.pad_token_id,
        tok.sep_token_id,
    ]


def test_classifier_integrated_gradients_equal_captums_layer_integrated_gradients_over_the_word_embeddings(classifier):
    from captum.attr import LayerIntegratedGradients

    from model_zoo.hf.attribution import classifier_attribution, pad_baseline

    result = classifier_attribution(classifier, SENTENCE, n_steps=16)
    enc = classifier.tokenizer(SENTENCE, return_tensors="pt")
    label = classifier.label_names.index(result.output)

    def log_probs(input_ids):
        n = input_ids.size(0)
        return classifier.model(input_ids, attention_mask=enc["attention_mask"].expand(n, -1)).logits.log_softmax(-1)

    layer = LayerIntegratedGradients(log_probs, classifier.model.get_input_embeddings())
    expected = layer.attribute(
        enc["input_ids"], pad_baseline(classifier, enc["input_ids"]), target=label, n_steps=result.n_steps
    )  # (1, S, D)
    assert result.integrated_gradients == pytest.approx(expected[0].sum(-1).tolist(), abs=1e-5)


def test_scratch_attributions_sum_to_the_output_tokens_log_probabilitys_move_from_zero_embeddings(reverse):
    model, vocab = reverse
    result = attribution.scratch_attribution(model, vocab, "3 1 4 2", position=1)
    assert abs(result.delta) <= completeness_tolerance(result.output_move)
    assert result.attribution_sum - result.output_move == pytest.approx(result.delta, abs=1e-5)
    seen = attention_for_text(model, vocab, "3 1 4 2")
    assert result.output == seen.output_tokens[1] and result.tokens == seen.source_tokens
    # F on the real input, through the model's own forward on token ids
    src = torch.tensor([[vocab.stoi[t] for t in seen.source_tokens]])
    tgt = torch.tensor([[vocab.stoi[t] for t in seen.target_tokens]])
    with torch.no_grad():
        probs = model(src, tgt).logits[0, 1].softmax(-1)
    assert result.probability == pytest.approx(float(probs[vocab.stoi[result.output]]), abs=1e-6)


def test_scratch_language_model_explains_the_next_token_over_the_prompt_so_far():
    task = HamletTask(block_size=16)
    torch.manual_seed(0)
    model = build_model(task.model_config(d_model=16, n_heads=2, n_decoder_layers=1, d_ff=32))
    result = attribution.scratch_attribution(model, task.vocab, "To be, or", position=3)
    assert abs(result.delta) <= completeness_tolerance(result.output_move)
    assert result.counted == [True] * 4 + [False] * (len(result.tokens) - 4)
    assert result.integrated_gradients[4:] == [0.0] * (len(result.tokens) - 4)  # causal: later tokens cannot matter
    assert result.attention[4:] == pytest.approx([0.0] * (len(result.tokens) - 4))


def test_too_few_steps_are_redone_with_more_until_completeness_holds(reverse):
    model, vocab = reverse
    result = attribution.scratch_attribution(model, vocab, "3 1 4 2 5", position=0, n_steps=2)
    assert result.n_steps > 2
    assert abs(result.delta) <= completeness_tolerance(result.output_move)


def test_a_long_text_keeps_within_the_servers_work_and_batching_the_path_changes_nothing():
    from model_zoo.views.attribution import integrated_gradients

    torch.manual_seed(1)
    inputs, baselines = torch.randn(1, 5, 16), torch.zeros(1, 5, 16)
    weights = torch.randn(16, 3)

    def forward(x):  # (B, S, D) -> (B, 3): a curved function, so 2 steps miss completeness
        return torch.tanh(x.sum(1) @ weights).pow(3)

    bounded = integrated_gradients(forward, inputs, baselines, 0, n_steps=2, max_token_steps=20)
    assert bounded.n_steps == 4  # 20 token-steps over 5 tokens: doubled once, then it stops
    free = integrated_gradients(forward, inputs, baselines, 0, n_steps=2)
    assert free.n_steps > 4 and abs(free.delta) <= completeness_tolerance(free.output_move)
    one_point_at_a_time = integrated_gradients(forward, inputs, baselines, 0, n_steps=8, max_steps=8, batch_tokens=5)
    all_at_once = integrated_gradients(forward, inputs, baselines, 0, n_steps=8, max_steps=8)
    assert one_point_at_a_time.per_token == pytest.approx(all_at_once.per_token, abs=1e-6)


# -- the attention shown is the model's own ---------------------------------------------------------
def test_classifier_attention_is_the_last_layers_cls_row_and_the_rollouts(classifier):
    from model_zoo.hf.attribution import classifier_attribution
    from model_zoo.hf.inference import attention_maps

    result = classifier_attribution(classifier, SENTENCE)
    seen = attention_maps(classifier, SENTENCE)
    last = seen.attentions["encoder_self"][-1][0]  # (H, S, S)
    assert result.attention == pytest.approx(last.mean(0)[0].tolist(), abs=1e-6)
    assert result.rollout == pytest.approx(attention_rollout(seen.attentions)[-1, 0].tolist(), abs=1e-6)
    assert result.tokens[0] == "[CLS]" and result.tokens[-1] == "[SEP]"
    assert result.counted == [False] + [True] * (len(result.tokens) - 2) + [False]


def test_scratch_attention_is_the_last_decoder_layers_cross_attention_row(reverse):
    model, vocab = reverse
    result = attribution.scratch_attribution(model, vocab, "3 1 4 2", position=2)
    seen = attention_for_text(model, vocab, "3 1 4 2")
    cross = seen.attentions["cross"][-1][0].mean(0)[2]  # (S,)
    assert result.attention == pytest.approx(cross.tolist(), abs=1e-6)
    carried = cross @ attention_rollout(seen.attentions, "encoder_self")[-1]
    assert result.rollout == pytest.approx(carried.tolist(), abs=1e-6)
    assert sum(result.rollout) == pytest.approx(1.0, abs=1e-5)


# -- Spearman, the caption, the completeness line ---------------------------------------------------
def test_spearman_matches_hand_computed_examples():
    # ranks 1..5 against 2 1 4 3 5: d² = 1+1+1+1+0 = 4, ρ = 1 − 6·4 / (5·24) = 0.8
    assert spearman([10, 20, 30, 40, 50], [0.2, 0.1, 0.4, 0.3, 0.5]) == pytest.approx(0.8)
    # a tie shares its mean rank: ranks (1, 2.5, 2.5, 4) and (1, 2, 3, 4) -> 4.5 / √(4.5·5)
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / (4.5 * 5) ** 0.5)
    assert spearman([1, 2, 3], [9, 5, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2], [1, 2]) is None  # too few to rank
    assert spearman([1, 1, 1], [1, 2, 3]) is None  # a constant order says nothing


def handmade(ig, attention, rollout, tokens=None, counted=None) -> TokenAttribution:
    tokens = tokens or ["[CLS]", "good", "film", "bad", "plot", "[SEP]"]
    return TokenAttribution(
        tokens=tokens,
        counted=counted or [False, True, True, True, True, False],
        integrated_gradients=ig,
        attention=attention,
        rollout=rollout,
        output="positive",
        explained="the label 'positive'",
        probability=0.9,
        output_move=2.3125,
        attribution_sum=2.3101,
        delta=-0.0024,
        n_steps=32,
        names={"integrated_gradients": "IG", "attention": "attention", "rollout": "rollout"},
        baseline="every word piece replaced by [PAD]",
    )


def test_caption_says_the_attention_follows_when_the_orders_agree():
    # |IG| ranks (good, film, bad, plot) = (4, 2, 3, 1); attention the same (ρ = 1); rollout (3, 4, 2, 1):
    # d² = 1 + 4 + 1 + 0 = 6, ρ = 1 − 6·6 / (4·15) = 0.4
    result = handmade([0.0, 1.5, 0.3, -0.9, 0.1, 0.0], [0.5, 0.4, 0.2, 0.3, 0.1, 0.5], [0.9, 0.3, 0.4, 0.2, 0.1, 0.9])
    rho = attribution.agreement(result)
    assert rho["attention"] == pytest.approx(1.0) and rho["rollout"] == pytest.approx(0.4)
    caption = attribution.attribution_caption(result)
    assert "ranks 'good' first (pushing towards it)" in caption
    assert "attention's order follows it closely (ρ = 1.00, its top token 'good')" in caption
    assert "rollout's follows it loosely (ρ = 0.40, its top token 'film')" in caption  # [CLS]'s 0.9 is not ranked
    assert "over the 4 tokens ranked" in caption and "Here the attention happens to follow" in caption


def test_caption_says_reading_the_attention_would_mislead_when_the_orders_disagree():
    # |IG| order bad > plot > film > good; attention reversed (ρ = −1), rollout unrelated (ρ = 0)
    result = handmade([0.0, 0.1, 0.2, -1.2, 0.5, 0.0], [0.0, 0.4, 0.3, 0.1, 0.2, 0.0], [0.0, 0.3, 0.1, 0.2, 0.4, 0.0])
    rho = attribution.agreement(result)
    assert rho["attention"] == pytest.approx(-1.0) and rho["rollout"] == pytest.approx(0.0)
    caption = attribution.attribution_caption(result)
    assert "ranks 'bad' first (pushing against it)" in caption
    assert "attention's order runs against it (ρ = -1.00, its top token 'good')" in caption
    assert "rollout's is unrelated to it (ρ = 0.00, its top token 'plot')" in caption
    assert "would mislead here: neither map's top token is the one that moved the output most" in caption
    assert "Jain & Wallace 2019" in caption


def test_caption_says_when_the_top_token_agrees_but_the_orders_part_ways():
    # |IG| ranks (good, film, bad, plot) = (4, 2, 3, 1); attention and rollout (4, 2, 1, 3):
    # d² = 0 + 0 + 4 + 4 = 8, ρ = 1 − 6·8 / 60 = 0.2, and 'good' first in all three
    maps = [0.0, 0.4, 0.2, 0.1, 0.3, 0.0]
    result = handmade([0.0, 1.5, 0.3, -0.9, 0.1, 0.0], maps, maps)
    assert attribution.agreement(result)["attention"] == pytest.approx(0.2)
    caption = attribution.attribution_caption(result)
    assert "attention's order barely follows it (ρ = 0.20, its top token 'good')" in caption
    assert "The attention and the rollout put 'good' first too, but past it the orders part ways" in caption
    assert "neither map's top token" not in caption


def test_caption_refuses_to_rank_fewer_than_three_tokens():
    result = handmade(
        [0.0, 1.0, 0.5, 0.0], [0.1, 0.2, 0.3, 0.4], None, ["[CLS]", "good", "film", "[SEP]"], [False, True, True, False]
    )
    assert attribution.agreement(result)["attention"] is None
    assert attribution.attribution_caption(result).startswith("Only 2 tokens to rank")


def test_completeness_line_gives_the_sum_the_move_and_captums_delta():
    line = attribution.completeness_line(handmade([0.0] * 6, [0.0] * 6, None))
    assert "sum to 2.310; the output (log-probability of the label 'positive') moved 2.312" in line
    assert "they agree" in line and "convergence delta -2.4e-03, 32 steps" in line


def test_chart_lines_up_three_rows_over_the_same_tokens_and_the_table_has_a_row_per_method_and_token():
    result = handmade([0.0, 1.5, 0.3, -0.9, 0.1, 0.0], [0.5, 0.4, 0.2, 0.3, 0.1, 0.5], [0.9, 0.3, 0.4, 0.1, 0.2, 0.9])
    frame = attribution.attribution_frame(result)
    assert len(frame) == 3 * 6
    assert frame.loc[frame["method"] == "integrated_gradients", "direction"].tolist()[1:4] == ["for", "for", "against"]
    spec = attribution.attribution_chart(frame).to_dict()
    labels = ["0: [CLS]", "1: good", "2: film", "3: bad", "4: plot", "5: [SEP]"]
    assert [row["encoding"]["x"]["scale"]["domain"] for row in spec["vconcat"]] == [labels] * 3
    assert spec["vconcat"][2]["encoding"]["y"]["scale"]["domain"] == [0.0, 0.4]  # the words' scale, not [CLS]'s


def test_a_long_prompt_wraps_onto_lines_no_wider_than_the_page_on_the_same_scales():
    """100 characters of a Hamlet prompt at the page's 760 px (63 fit a line at 12 px): two lines of
    50, each with its three rows; every token once per method, each method's scale the same on both."""
    n = 100
    tokens = [f"{i % 10}" for i in range(n)]
    scores = [((i * 7) % 13 - 6) / 6 for i in range(n)]
    result = handmade(scores, [abs(x) for x in scores], [abs(x) / 2 for x in scores], tokens, [True] * n)
    frame = attribution.attribution_frame(result)
    width = attribution.attribution_width(n)
    spec = attribution.attribution_chart(frame, width).to_dict()
    rows = spec["vconcat"]
    assert len(rows) == 6
    assert all(row["width"] <= width for row in rows)
    domains = [row["encoding"]["x"]["scale"]["domain"] for row in rows]
    assert [len(d) for d in domains] == [50, 50, 50, 50, 50, 50]
    labels = frame.drop_duplicates("position").sort_values("position")["label"].tolist()
    assert domains[0] + domains[3] == labels  # each token once, in order
    assert [rows[i]["encoding"]["y"]["scale"]["domain"] for i in range(3)] == [
        rows[i + 3]["encoding"]["y"]["scale"]["domain"] for i in range(3)
    ]
    assert "continued" in rows[3]["title"]["text"] and "continued" not in rows[0]["title"]["text"]


# -- the page ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reverse_run(weights) -> Path:
    from model_zoo.toy.train_config import TrainConfig
    from model_zoo.toy.training import train

    task = make_task("reverse", n_symbols=6, max_len=5, n_heldout=16)
    torch.manual_seed(0)
    model = Transformer(task.model_config(d_model=16, n_heads=2, d_ff=32))
    train(model, task, TrainConfig(steps=10, eval_every=10, batch_size=16), checkpoint_dir=weights / "reverse-demo")
    return weights / "reverse-demo"


@pytest.fixture
def app_env(weights, monkeypatch):
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(weights))
    monkeypatch.setenv("WORKBENCH_RAISE", "1")


def open_explain(params: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    for name, value in (params or {}).items():
        at.query_params[name] = value
    at.switch_page("pages/explain.py").run()
    assert not at.exception, at.exception
    return at


def param(at: AppTest, name: str) -> str | None:
    """A query parameter's value as the page sees it (AppTest keeps some as one-item lists)."""
    value = at.query_params.get(name)
    return value[0] if isinstance(value, list) else value


def look_for(at: AppTest) -> str:
    return next(c.value for c in at.caption if c.value.startswith("**What to look for:**"))


def test_explain_page_shows_the_classifiers_attribution_and_a_scratch_runs(app_env, classifier_run, reverse_run):
    from model_zoo.hf.attribution import classifier_attribution
    from model_zoo.hf.inference import load_finetuned

    at = open_explain()
    assert not at.error, [e.value for e in at.error]
    sentence = at.text_input(key="explain_text").value  # the example sentence
    expected = classifier_attribution(load_finetuned(classifier_run), sentence)
    assert look_for(at).endswith(attribution.attribution_caption(expected))
    assert any(attribution.completeness_line(expected) in c.value for c in at.caption)
    assert [m.label for m in at.metric][1:] == ["ρ(|IG|, attention)", "ρ(|IG|, rollout)"]
    assert len(at.get("download_button")) == 3  # PNG, SVG, CSV
    assert param(at, "tab") == "classifier" and param(at, "run") == "tiny-bert"

    at.radio(key="explain_mode").set_value("scratch").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="explain_scratch_run").value == "reverse-demo (saved)"
    at.selectbox(key="explain_position").set_value(1).run()
    assert "at position 1" in look_for(at)
    assert param(at, "step") == "1" and param(at, "run") == "reverse-demo"


def test_a_link_opens_the_same_scratch_view(app_env, reverse_run):
    at = open_explain({"tab": "scratch", "run": "reverse-demo", "text": "3 1 4", "step": "2"})
    assert not at.error, [e.value for e in at.error]
    assert at.radio(key="explain_mode").value == "scratch"
    assert at.text_input(key="explain_text").value == "3 1 4"
    assert at.selectbox(key="explain_position").value == 2
    assert "at position 2" in look_for(at)


def test_a_link_opens_the_same_classifier_view(app_env, classifier_run):
    at = open_explain({"tab": "classifier", "run": "tiny-bert", "text": "a dull plot ."})
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="explain_ft_run").value == "tiny-bert (saved)"
    assert at.text_input(key="explain_text").value == "a dull plot ."
    assert "over the 4 tokens ranked" in look_for(at)  # a, dull, plot and the full stop
    assert param(at, "text") == "a dull plot ." and param(at, "step") is None


def test_picking_another_classifier_keeps_the_pick_and_writes_it_into_the_link(app_env, classifier_run, weights):
    from hf_tiny import tiny_bert_dir, tiny_config

    from model_zoo.hf.finetune import finetune

    finetune(tiny_config(tiny_bert_dir(), epochs=1, max_steps=1, seed=1), weights / "tiny-bert-2")
    at = open_explain()
    picker = at.selectbox(key="explain_ft_run")
    other = next(o for o in picker.options if o != picker.value)
    picker.set_value(other).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="explain_ft_run").value == other  # not put back to the run the link held before
    assert param(at, "run") == other.split(" (")[0]
