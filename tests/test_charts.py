"""Every chart builds a valid altair spec with the marks and encodings it promises, and the
matplotlib exports write real PNG files."""

import numpy as np
import pandas as pd
import pytest
import torch

from model_zoo import Transformer, TransformerConfig
from model_zoo.views import attention, dynamics, embeddings, positions, weights
from model_zoo.views.figures.attention import (
    attention_difference_chart,
    attention_heads_chart,
    attention_heatmap,
    follow_token_chart,
    heatmaps_per_row,
    selected_heads_chart,
)
from model_zoo.views.figures.common import DIVERGING_SCHEME, MAX_WIDTH, MIN_HEIGHT, MIN_WIDTH, SEQUENTIAL_SCHEME
from model_zoo.views.figures.decoding import beam_tree_chart, logit_lens_chart, top_tokens_chart
from model_zoo.views.figures.embeddings import (
    embedding_scatter,
    neighbours_chart,
    positional_encoding_chart,
    positional_similarity_chart,
)
from model_zoo.views.figures.finetuning import confusion_chart, label_probabilities_chart
from model_zoo.views.figures.training import (
    live_metric_spec,
    metric_chart,
    per_layer_chart,
    save_history_png,
    stability_chart,
)
from model_zoo.views.figures.weights import parameter_counts_chart, weight_histogram_chart, weight_norms_chart

TINY = TransformerConfig(
    src_vocab_size=13,
    tgt_vocab_size=11,
    d_model=16,
    n_heads=2,
    n_encoder_layers=2,
    n_decoder_layers=2,
    d_ff=32,
    max_len=20,
)
SRC, TGT = ["a", "b", "c", "a"], ["<bos>", "a", "b"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HISTORY = [
    {
        "step": s,
        "loss": 3.0 / s,
        "token_accuracy": s / 8,
        "lr": 1e-3 * s,
        "grad_norm": 0.5 * s,
        "tokens_per_s": 100.0,
        "grad_norm_per_layer": {"encoder.0": 0.1 * s, "generator": 0.2},
        "update_ratio_per_layer": {"encoder.0": 1e-3, "generator": 2e-3},
    }
    for s in range(1, 9)
]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Transformer(TINY).eval()


@pytest.fixture(scope="module")
def attentions(model):
    return attention.scratch_attention(model, [5, 6, 7, 5], [1, 5, 6])


def _marks(spec: dict) -> list[str]:
    """Every mark type anywhere in a (layered, faceted or concatenated) spec."""
    found = []
    if "mark" in spec:
        mark = spec["mark"]
        found.append(mark if isinstance(mark, str) else mark["type"])
    for key in ("layer", "vconcat", "hconcat", "concat"):
        for sub in spec.get(key, []):
            found += _marks(sub)
    if "spec" in spec:
        found += _marks(spec["spec"])
    return found


def _encodings(spec: dict) -> dict:
    if "encoding" in spec:
        return spec["encoding"]
    for key in ("layer", "vconcat", "hconcat", "concat"):
        if spec.get(key):
            return _encodings(spec[key][0])
    return _encodings(spec["spec"])


def _title(spec: dict) -> str:
    title = spec["title"]
    text = title["text"] if isinstance(title, dict) else title
    return " ".join(text) if isinstance(text, list) else text


def test_attention_heatmap_puts_keys_across_queries_down_and_weight_as_colour(attentions):
    frame = attention.attention_map(attentions, "cross", 1, TGT, SRC, head=0)
    spec = attention_heatmap(frame).to_dict()
    assert _marks(spec) == ["rect", "text"]
    enc = _encodings(spec)
    assert enc["x"]["field"] == "key" and enc["y"]["field"] == "query" and enc["color"]["field"] == "weight"
    assert enc["x"]["sort"] == ["0: a", "1: b", "2: c", "3: a"]
    assert "cross-attention" in _title(spec) and "head 0" in _title(spec)


def test_big_attention_maps_drop_the_numbers_in_the_cells(attentions):
    frame = attention.attention_map(attentions, "encoder_self", 0, SRC, SRC, head=None)
    assert _marks(attention_heatmap(frame, annotate=False).to_dict()) == ["rect"]
    assert "heads averaged" in _title(attention_heatmap(frame).to_dict())


def test_heads_grid_is_faceted_by_head(attentions):
    spec = attention_heads_chart(attention.attention_heads(attentions, "decoder_self", 0, TGT, TGT)).to_dict()
    assert spec["facet"]["field"] == "head"
    assert _marks(spec) == ["rect"]


def test_follow_token_chart_has_a_row_per_layer_and_head(attentions):
    frame = attention.follow_token(attentions, "encoder_self", 1, SRC, SRC)
    spec = follow_token_chart(frame).to_dict()
    enc = _encodings(spec)
    assert enc["y"]["field"] == "layer_head" and enc["y"]["sort"] == ["L0 H0", "L0 H1", "L1 H0", "L1 H1"]
    assert enc["x"]["field"] == "other"


def test_positional_charts_build():
    pe = positional_encoding_chart(positions.positional_encoding_frame(16, 20)).to_dict()
    assert _marks(pe) == ["rect"] and _encodings(pe)["color"]["field"] == "value"
    sim = positional_similarity_chart(positions.positional_similarity_frame(16, 20)).to_dict()
    assert _encodings(sim)["color"]["field"] == "similarity"


def test_embedding_scatter_labels_each_point_with_its_token(model):
    frame = embeddings.embedding_projection(embeddings.embedding_table(model, "tgt"), skip=[0])
    spec = embedding_scatter(frame).to_dict()
    assert _marks(spec) == ["circle", "text"]
    assert spec["layer"][1]["encoding"]["text"]["field"] == "token"
    assert "% of variance" in _encodings(spec)["x"]["title"]


def test_weight_charts_build(model):
    hist = weight_histogram_chart(weights.weight_histogram(model, "generator.weight")).to_dict()
    assert _marks(hist) == ["bar"] and _encodings(hist)["x"]["bin"] == "binned"
    with pytest.raises(ValueError, match="pass `name`"):
        weight_histogram_chart(weights.weight_histogram(model))
    assert _marks(weight_norms_chart(weights.weight_stats(model)).to_dict()) == ["bar"]
    counts = parameter_counts_chart(weights.parameter_counts(model)).to_dict()
    assert f"{model.num_parameters():,} in all" in counts["title"]
    table = embeddings.nearest_neighbours(embeddings.embedding_table(model), 5, k=3)
    assert _marks(neighbours_chart(table, "5").to_dict()) == ["bar"]


def test_metric_charts_use_a_log_scale_for_loss_and_grad_norm():
    spec = metric_chart(dynamics.metric_frame(HISTORY, ["loss", "token_accuracy"])).to_dict()
    assert len(spec["vconcat"]) == 2
    assert spec["vconcat"][0]["encoding"]["y"]["scale"]["type"] == "log"
    assert spec["vconcat"][1]["encoding"]["y"]["scale"].get("type") != "log"


@pytest.mark.parametrize("metric", ["loss", "token_accuracy", "lr", "grad_norm"])
def test_live_metric_spec_is_metric_chart_without_its_data(metric):
    frame = dynamics.metric_frame(HISTORY, [metric])
    full = metric_chart(frame, metric, height=MIN_HEIGHT).to_dict()
    live = live_metric_spec(metric)
    assert "data" not in live and "datasets" not in live  # the rows go beside it: the spec never changes
    assert full["datasets"] and full["data"]["name"] in full["datasets"]
    for key in ("encoding", "title", "height", "width", "autosize"):
        assert live[key] == full[key], key
    assert live["mark"] == {**full["mark"], "point": False}
    live["title"] = "changed"  # each call gets its own copy
    assert live_metric_spec(metric)["title"] == full["title"]
    assert live_metric_spec("loss", log=False)["encoding"]["y"]["scale"].get("type") != "log"


@pytest.mark.parametrize("key", ["grad_norm_per_layer", "update_ratio_per_layer"])
def test_per_layer_chart_draws_a_log_line_per_group(key):
    spec = per_layer_chart(dynamics.per_layer_frame(HISTORY, key), title=key).to_dict()
    enc = _encodings(spec)
    assert _marks(spec) == ["line"] and enc["color"]["field"] == "group"
    assert enc["color"]["sort"] == ["encoder.0", "generator"] and enc["y"]["scale"]["type"] == "log"


def test_stability_chart_colours_each_recipe_and_skips_non_finite_points():
    broken = HISTORY[:4] + [{"step": 5, "loss": float("nan"), "grad_norm": float("inf")}]
    spec = stability_chart({"stable": HISTORY, "broken": broken}).to_dict()
    assert [p["title"] for p in spec["vconcat"]] == ["loss", "gradient norm", "largest update / weight"]
    assert spec["vconcat"][0]["encoding"]["color"]["scale"]["domain"] == ["stable", "broken"]
    assert all(p["encoding"]["y"]["scale"]["type"] == "log" for p in spec["vconcat"])


def test_stability_chart_draws_a_run_that_diverged_before_its_first_step_as_nothing():
    spec = stability_chart({"stable": HISTORY, "broken": []}).to_dict()
    assert spec["vconcat"][0]["encoding"]["color"]["scale"]["domain"] == ["stable", "broken"]


def test_a_table_from_the_wrong_function_is_a_clear_error():
    with pytest.raises(ValueError, match="build it with attention.attention_map"):
        attention_heatmap(positions.positional_encoding_frame(4, 4))


def test_history_png_is_written(tmp_path):
    out = save_history_png({"stable": HISTORY, "broken": HISTORY[:3]}, tmp_path / "curves.png")
    assert out.read_bytes().startswith(PNG_MAGIC)
    single = save_history_png(HISTORY, tmp_path / "one.png", metrics=["loss"])
    assert single.read_bytes().startswith(PNG_MAGIC)
    diverged_at_once = save_history_png({"stable": HISTORY, "broken": []}, tmp_path / "d.png")
    assert diverged_at_once.read_bytes().startswith(PNG_MAGIC)


# -- readable on a projector (1280 x 720) ------------------------------------------------------------
def _walk(spec, key: str) -> list:
    """Every value stored under `key` anywhere in a spec (dicts and lists, any depth)."""
    found = []
    if isinstance(spec, dict):
        for k, v in spec.items():
            if k == key:
                found.append(v)
            found += _walk(v, key)
    elif isinstance(spec, list):
        for v in spec:
            found += _walk(v, key)
    return found


def _axis_titles(spec) -> list[str]:
    titles = [a.get("title") for a in _walk(spec, "axis") if isinstance(a, dict)]
    titles += [e.get("title") for e in _walk(spec, "x") + _walk(spec, "y") if isinstance(e, dict)]
    return [t for t in titles if isinstance(t, str)]


def hand_made_attention(n: int, kind: str = "encoder_self") -> "pd.DataFrame":
    tokens = [f"w{i}" for i in range(n)]
    weights = torch.softmax(torch.randn(1, 1, n, n, generator=torch.Generator().manual_seed(n)), dim=-1)
    return attention.attention_map({kind: [weights]}, kind, 0, tokens, tokens, head=0)


@pytest.mark.parametrize("n, beside", [(7, 2), (12, 1), (26, 1)])
def test_two_maps_go_side_by_side_only_when_both_fit_the_screen(n, beside):
    """Heads together draws the layer's mean and the rollout side by side for a toy input, one under
    the other for the Hamlet window (side by side, the rollout ran off a 1280 px screen)."""
    frame = hand_made_attention(n)
    width = attention_heatmap(frame, cell=24).to_dict()["width"]
    assert heatmaps_per_row(frame, 24, 2, labels=110) == beside
    assert beside * (width + 110) <= 760 < 2 * (width + 110) or beside == 2


@pytest.mark.parametrize("n, cell, angle", [(12, 28, -45), (40, 14, -45), (64, 11, -90)])
def test_an_attention_map_of_the_hamlet_window_fits_the_column_with_every_key_labelled(n, cell, angle):
    """A 64-character window (the Hamlet model's) at 11 px a cell: a 704 px plot that fits the page's
    column at 1280 px (at 14 px it was 896 px and cut off), its key labels upright, one a cell."""
    spec = attention_heatmap(hand_made_attention(n)).to_dict()
    assert spec["width"] == cell * n and spec["width"] <= 704
    axis = spec["encoding"]["x"]["axis"]
    assert axis["labelAngle"] == angle and axis["labelOverlap"] is False  # every key named


def every_chart(model, attentions) -> dict:
    """One spec of each chart the app draws, on small real data."""
    stats = weights.weight_stats(model)
    top = pd.DataFrame({"rank": [1, 2, 3], "token": ["a", "b", "c"], "probability": [0.2, 0.7, 0.1]})
    top["chosen"] = [False, True, False]
    from model_zoo.hf.compare import confusion_frame

    return {
        "attention": attention_heatmap(hand_made_attention(5)),
        "attention 40": attention_heatmap(hand_made_attention(40)),
        "heads": attention_heads_chart(attention.attention_heads(attentions, "decoder_self", 0, TGT, TGT)),
        "follow": follow_token_chart(attention.follow_token(attentions, "encoder_self", 1, SRC, SRC)),
        "positional encoding": positional_encoding_chart(positions.positional_encoding_frame(16, 20)),
        "positional similarity": positional_similarity_chart(positions.positional_similarity_frame(16, 20)),
        "embeddings": embedding_scatter(
            embeddings.embedding_projection(embeddings.embedding_table(model, "tgt"), skip=[0])
        ),
        "neighbours": neighbours_chart(embeddings.nearest_neighbours(embeddings.embedding_table(model), 5, k=3)),
        "histogram": weight_histogram_chart(weights.weight_histogram(model, "generator.weight")),
        "weight norms": weight_norms_chart(stats),
        "parameters": parameter_counts_chart(weights.parameter_counts(model, level="module")),
        "metrics": metric_chart(dynamics.metric_frame(HISTORY, ["loss", "token_accuracy", "lr", "grad_norm"])),
        "per layer": per_layer_chart(dynamics.per_layer_frame(HISTORY, "update_ratio_per_layer"), "x"),
        "stability": stability_chart({"stable": HISTORY, "broken": HISTORY[:4]}),
        "top-k": top_tokens_chart(top),
        "labels": label_probabilities_chart({"negative": 0.3, "positive": 0.7}),
        "confusion": confusion_chart(confusion_frame([[5, 1], [2, 4]], ["negative", "positive"]), "after"),
    }


def test_every_chart_has_a_plot_at_least_200_px_tall(model, attentions):
    for name, chart in every_chart(model, attentions).items():
        heights = [h for h in _walk(chart.to_dict(), "height") if isinstance(h, int | float)]
        assert heights and min(heights) >= MIN_HEIGHT, (name, heights)


def test_every_heatmap_uses_the_one_colour_blind_safe_palette(model, attentions):
    schemes = set()
    for chart in every_chart(model, attentions).values():
        schemes |= set(_walk(chart.to_dict(), "scheme"))
    assert schemes == {SEQUENTIAL_SCHEME, DIVERGING_SCHEME} == {"viridis", "blueorange"}


def test_axis_titles_are_words_not_variable_names(model, attentions):
    for name, chart in every_chart(model, attentions).items():
        for title in _axis_titles(chart.to_dict()):
            assert "_" not in title, (name, title)
    spec = metric_chart(dynamics.metric_frame(HISTORY, ["lr"])).to_dict()
    assert spec["title"] == "learning rate" and spec["encoding"]["y"]["axis"]["title"] == "learning rate (log scale)"


def test_legends_sit_below_the_plot_and_are_never_cut(model, attentions):
    for name, chart in every_chart(model, attentions).items():
        for legend in _walk(chart.to_dict(), "legend"):
            if isinstance(legend, dict):
                assert legend.get("orient") == "bottom", (name, legend)


@pytest.mark.parametrize("n", [5, 12, 40])
def test_every_token_is_labelled_up_to_40_tokens(n):
    spec = attention_heatmap(hand_made_attention(n)).to_dict()
    enc = _encodings(spec)
    for channel in ("x", "y"):
        assert len(enc[channel]["sort"]) == n  # one label per token, in order
        assert enc[channel]["axis"]["labelOverlap"] is False  # never thinned to every other label
    assert spec["height"] >= 200 and spec["height"] / n >= 14  # a row per label, at least 14 px each


def test_long_titles_wrap_to_the_plot_width_instead_of_being_cut():
    spec = attention_heatmap(hand_made_attention(4, kind="cross")).to_dict()
    lines = spec["title"]["text"]
    assert isinstance(lines, list) and len(lines) >= 2
    assert all(len(line) <= max(28, spec["width"] / 7) for line in lines)
    assert spec["title"]["limit"] == 0  # never cut with "…"


def test_top_k_bars_are_sorted_by_probability():
    top = pd.DataFrame({"rank": [1, 2, 3], "token": ["6", "<bos>", "7"], "probability": [0.1, 0.05, 0.85]})
    top["chosen"] = [False, False, True]
    enc = _encodings(top_tokens_chart(top).to_dict())
    assert enc["y"]["sort"] == ["7", "6", "<bos>"]
    assert _encodings(label_probabilities_chart({"a": 0.2, "b": 0.8}).to_dict())["y"]["sort"] == ["b", "a"]


def test_embedding_scatter_names_a_readable_subset_of_a_large_vocabulary():
    points = torch.randn(500, 2, generator=torch.Generator().manual_seed(0))
    frame = pd.DataFrame({"token_id": range(500), "token": [f"w{i}" for i in range(500)]})
    frame["x"], frame["y"] = points[:, 0].tolist(), points[:, 1].tolist()
    spec = embedding_scatter(frame, max_labels=30).to_dict()
    labelled = [row for row in spec["datasets"][next(iter(spec["datasets"]))] if row["label"]]
    assert len(labelled) == 30
    assert "w0" in {row["token"] for row in labelled}  # the first (most frequent) id is named
    assert "30 of 500 tokens named" in spec["title"]["subtitle"]


def test_a_character_models_whitespace_is_drawn_visibly_in_the_embedding_charts():
    frame = pd.DataFrame({"token_id": range(3), "token": [" ", "\n", "a"], "x": [0.0, 1.0, 2.0], "y": [0.0, 1.0, 0.0]})
    spec = embedding_scatter(frame).to_dict()
    assert {row["token"] for row in spec["datasets"][next(iter(spec["datasets"]))]} == {"␣", "↵", "a"}
    table = pd.DataFrame({"token": [" ", "\n"], "cosine": [0.5, 0.2], "rank": [1, 2]})
    bars = neighbours_chart(table, "a").to_dict()
    assert [row["token"] for row in bars["datasets"][next(iter(bars["datasets"]))]] == ["␣", "↵"]
    assert table["token"].tolist() == [" ", "\n"]  # the table (its CSV download) keeps the characters themselves


def test_weight_norms_are_grouped_by_block_in_forward_order(model):
    spec = weight_norms_chart(weights.weight_stats(model)).to_dict()
    enc = _encodings(spec)
    assert enc["y"]["field"] == "group" and enc["yOffset"]["field"] == "part"
    assert enc["y"]["sort"] == list(model.layer_groups())  # src_embed, tgt_embed, encoder.0, ...
    rows = spec["datasets"][next(iter(spec["datasets"]))]
    encoder_0 = {r["part"] for r in rows if r["group"] == "encoder.0"}
    assert encoder_0 == {"self-attention", "feed-forward", "LayerNorm"}
    decoder_0 = {r["part"] for r in rows if r["group"] == "decoder.0"}
    assert "cross-attention" in decoder_0


def test_parameter_counts_keep_the_table_order_and_full_labels(model):
    counts = weights.parameter_counts(model, level="module")
    enc = _encodings(parameter_counts_chart(counts).to_dict())
    assert enc["y"]["sort"] == [m for m in counts["module"] if m != "total"]
    assert enc["y"]["axis"]["labelLimit"] == 0  # no label cut


def test_runs_compared_on_accuracy_use_a_plain_axis_and_the_legend_title_given():
    spec = stability_chart(
        {"run a": HISTORY, "run b": HISTORY[:5]}, metrics=["loss", "token_accuracy"], legend_title="run"
    ).to_dict()
    loss, accuracy = spec["vconcat"]
    assert loss["encoding"]["y"]["scale"]["type"] == "log"
    assert accuracy["encoding"]["y"]["scale"].get("type") != "log"
    assert accuracy["encoding"]["color"]["title"] == "run" and accuracy["title"] == "token accuracy"


# -- readable on a projector: the views issue 21 found unreadable at 1280 x 720 ------------------------
def _font_sizes(spec) -> list[float]:
    """Every font size a spec sets: marks' fontSize, axes', legends' and headers' label and title sizes."""
    return [
        v
        for key in ("fontSize", "labelFontSize", "titleFontSize")
        for v in _walk(spec, key)
        if isinstance(v, int | float)
    ]


def _lens_frame(n_steps: int, n_blocks: int = 2) -> pd.DataFrame:
    rows = [
        (
            step,
            str(step % 5),
            block,
            f"block {block + 1}",
            1,
            "<eos>" if block == 0 else str(step % 5),
            0.4 + 0.1 * block,
        )
        for step in range(1, n_steps + 1)
        for block in range(n_blocks)
    ]
    return pd.DataFrame(rows, columns=["step", "chosen", "block", "block_label", "rank", "token", "probability"])


def _beam_tree():
    from model_zoo.toy.decoding import beam_search_tree
    from model_zoo.toy.tasks import make_task
    from model_zoo.views.decoding import beam_tree_frame

    task = make_task("copy", n_symbols=5, max_len=5, n_heldout=4)
    torch.manual_seed(0)
    model = Transformer(task.model_config(d_model=16, n_heads=2, d_ff=32)).eval()
    source, _ = task.heldout_pairs()[0]
    _, tree = beam_search_tree(model, torch.tensor(source), beam_width=3)
    return beam_tree_frame(tree, task.vocab)


def _difference(n: int) -> pd.DataFrame:
    tokens = [f"{i}: tok{i}" for i in range(n)]
    gen = torch.Generator().manual_seed(n)
    before, after = (torch.softmax(torch.randn(1, 1, n, n, generator=gen), dim=-1) for _ in range(2))
    return attention.attention_difference(
        {"encoder_self": [before]}, {"encoder_self": [after]}, "encoder_self", 0, tokens, tokens, head=None
    )


def test_the_difference_map_labels_every_token_and_wraps_its_title():
    spec = attention_difference_chart(_difference(10), cell=20).to_dict()
    enc = _encodings(spec)
    for channel in ("x", "y"):
        assert len(enc[channel]["sort"]) == 10  # a label per token, in order
        assert enc[channel]["axis"]["labelOverlap"] is False  # none thinned away (3 of 10 were drawn)
        assert enc[channel]["axis"]["labelFontSize"] >= 12
    assert spec["height"] >= MIN_HEIGHT and spec["height"] / 10 >= 14
    title = spec["title"]
    assert title["limit"] == 0 and isinstance(title["text"], list)  # wrapped, never cut with "…"
    assert all(len(line) <= max(28, spec["width"] / 7) for line in title["text"])


def test_the_logit_lens_is_a_readable_width_growing_with_the_steps():
    one, many = (logit_lens_chart(_lens_frame(n)).to_dict() for n in (1, 9))
    assert one["width"] >= MIN_WIDTH  # one step was a 44 px sliver under a cut title
    assert one["width"] <= many["width"] <= MAX_WIDTH
    assert one["title"]["limit"] == 0
    assert all(len(line) <= max(28, one["width"] / 7) for line in np.atleast_1d(one["title"]["text"]))
    x_axis = _walk(many, "x")[0]["axis"]
    assert x_axis["labelOverlap"] is False and len(_walk(many, "x")[0]["sort"]) == 9  # every step named
    assert min(_font_sizes(many)) >= 12


def test_the_beam_tree_writes_every_word_at_12_px_and_its_rings_leave_the_scores_clear():
    frame = _beam_tree()
    assert (frame["returned"] > 0).any()
    spec = beam_tree_chart(frame).to_dict()
    assert min(_font_sizes(spec)) >= 12  # tokens were 9 px, scores 8 px (about 6 px once scaled in the app)
    marks = [layer["mark"] for layer in spec["layer"]]
    ring = next(m for m in marks if m.get("type") == "point" and m.get("filled") is False)
    score = next(m for m in marks if m.get("type") == "text" and m.get("dy", 0) > 0)
    ring_reach = (ring["size"] / np.pi) ** 0.5 + ring["strokeWidth"] / 2  # size: the area in px²
    assert score["dy"] - score["fontSize"] / 2 >= ring_reach  # the score's top is below the ring
    label = next(m for m in marks if m.get("type") == "text" and m.get("dy", 0) < 0)
    assert -label["dy"] - label["fontSize"] / 2 >= ring_reach  # the token sits above it


def test_a_stable_runs_update_ratio_is_drawn_on_a_log_axis_despite_its_zero_first_step():
    stable = [
        {"step": s, "loss": 2.0 / s, "grad_norm": 1.0, "update_ratio_per_layer": {"encoder.0": 0.0 if s == 1 else 5e-3}}
        for s in range(1, 9)
    ]  # warm-up starts at lr 0: nothing moves at step 1
    broken = [{**e, "update_ratio_per_layer": {"encoder.0": 5.0}} for e in stable]
    spec = stability_chart({"stable": stable, "broken": broken}).to_dict()
    panel = next(p for p in spec["vconcat"] if p["title"] == "largest update / weight")
    assert panel["encoding"]["y"]["scale"]["type"] == "log"  # 0.005 and 5 three decades apart, both visible
    values = spec["datasets"][panel["data"]["name"]]
    assert values and min(v["value"] for v in values) > 0  # the zero step is left out, not the log axis


def test_every_chart_sets_text_of_at_least_12_px(model, attentions):
    drawn = {
        **every_chart(model, attentions),
        "difference": attention_difference_chart(_difference(6)),
        "logit lens": logit_lens_chart(_lens_frame(3)),
        "beam tree": beam_tree_chart(_beam_tree()),
        "heads picked": selected_heads_chart(attention.selected_heads(attentions, "cross", [(0, 0), (1, 1)], TGT, SRC)),
    }
    for name, chart in drawn.items():
        sizes = _font_sizes(chart.to_dict())
        assert not sizes or min(sizes) >= 12, (name, sorted(set(sizes)))


def test_per_layer_update_ratios_stay_on_a_log_axis_despite_a_zero_warm_up_step():
    history = [
        {
            "step": s,
            "update_ratio_per_layer": {"encoder.0": 0.0 if s == 1 else 1e-3, "generator": 0.0 if s == 1 else 0.2},
        }
        for s in range(1, 6)
    ]
    spec = per_layer_chart(dynamics.per_layer_frame(history, "update_ratio_per_layer"), "update ratio").to_dict()
    assert spec["encoding"]["y"]["scale"]["type"] == "log"
    assert min(v["value"] for v in spec["datasets"][spec["data"]["name"]]) > 0
