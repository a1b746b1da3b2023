"""Every chart builds a valid altair spec with the marks and encodings it promises, and the
matplotlib exports write real PNG files."""

import pytest
import torch

from model_zoo import Transformer, TransformerConfig
from model_zoo.views import attention, charts, dynamics, embeddings, positions, weights

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


def test_attention_heatmap_puts_keys_across_queries_down_and_weight_as_colour(attentions):
    frame = attention.attention_map(attentions, "cross", 1, TGT, SRC, head=0)
    spec = charts.attention_heatmap(frame).to_dict()
    assert _marks(spec) == ["rect", "text"]
    enc = _encodings(spec)
    assert enc["x"]["field"] == "key" and enc["y"]["field"] == "query" and enc["color"]["field"] == "weight"
    assert enc["x"]["sort"] == ["0: a", "1: b", "2: c", "3: a"]
    assert "cross-attention" in spec["title"] and "head 0" in spec["title"]


def test_big_attention_maps_drop_the_numbers_in_the_cells(attentions):
    frame = attention.attention_map(attentions, "encoder_self", 0, SRC, SRC, head=None)
    assert _marks(charts.attention_heatmap(frame, annotate=False).to_dict()) == ["rect"]
    assert "heads averaged" in charts.attention_heatmap(frame).to_dict()["title"]


def test_heads_grid_is_faceted_by_head(attentions):
    spec = charts.attention_heads_chart(attention.attention_heads(attentions, "decoder_self", 0, TGT, TGT)).to_dict()
    assert spec["facet"]["field"] == "head"
    assert _marks(spec) == ["rect"]


def test_follow_token_chart_has_a_row_per_layer_and_head(attentions):
    frame = attention.follow_token(attentions, "encoder_self", 1, SRC, SRC)
    spec = charts.follow_token_chart(frame).to_dict()
    enc = _encodings(spec)
    assert enc["y"]["field"] == "layer_head" and enc["y"]["sort"] == ["L0 H0", "L0 H1", "L1 H0", "L1 H1"]
    assert enc["x"]["field"] == "other"


def test_positional_charts_build():
    pe = charts.positional_encoding_chart(positions.positional_encoding_frame(16, 20)).to_dict()
    assert _marks(pe) == ["rect"] and _encodings(pe)["color"]["field"] == "value"
    sim = charts.positional_similarity_chart(positions.positional_similarity_frame(16, 20)).to_dict()
    assert _encodings(sim)["color"]["field"] == "similarity"


def test_embedding_scatter_labels_each_point_with_its_token(model):
    frame = embeddings.embedding_projection(embeddings.embedding_table(model, "tgt"), skip=[0])
    spec = charts.embedding_scatter(frame).to_dict()
    assert _marks(spec) == ["circle", "text"]
    assert spec["layer"][1]["encoding"]["text"]["field"] == "token"
    assert "% of variance" in _encodings(spec)["x"]["title"]


def test_weight_charts_build(model):
    hist = charts.weight_histogram_chart(weights.weight_histogram(model, "generator.weight")).to_dict()
    assert _marks(hist) == ["bar"] and _encodings(hist)["x"]["bin"] == "binned"
    with pytest.raises(ValueError, match="pass `name`"):
        charts.weight_histogram_chart(weights.weight_histogram(model))
    assert _marks(charts.weight_norms_chart(weights.weight_stats(model)).to_dict()) == ["bar"]
    counts = charts.parameter_counts_chart(weights.parameter_counts(model)).to_dict()
    assert f"{model.num_parameters():,} in all" in counts["title"]
    table = embeddings.nearest_neighbours(embeddings.embedding_table(model), 5, k=3)
    assert _marks(charts.neighbours_chart(table, "5").to_dict()) == ["bar"]


def test_metric_charts_use_a_log_scale_for_loss_and_grad_norm():
    spec = charts.metric_chart(dynamics.metric_frame(HISTORY, ["loss", "token_accuracy"])).to_dict()
    assert len(spec["vconcat"]) == 2
    assert spec["vconcat"][0]["encoding"]["y"]["scale"]["type"] == "log"
    assert spec["vconcat"][1]["encoding"]["y"]["scale"].get("type") != "log"


@pytest.mark.parametrize("key", ["grad_norm_per_layer", "update_ratio_per_layer"])
def test_per_layer_chart_draws_a_log_line_per_group(key):
    spec = charts.per_layer_chart(dynamics.per_layer_frame(HISTORY, key), title=key).to_dict()
    enc = _encodings(spec)
    assert _marks(spec) == ["line"] and enc["color"]["field"] == "group"
    assert enc["color"]["sort"] == ["encoder.0", "generator"] and enc["y"]["scale"]["type"] == "log"


def test_stability_chart_colours_each_recipe_and_skips_non_finite_points():
    broken = HISTORY[:4] + [{"step": 5, "loss": float("nan"), "grad_norm": float("inf")}]
    spec = charts.stability_chart({"stable": HISTORY, "broken": broken}).to_dict()
    assert [p["title"] for p in spec["vconcat"]] == ["loss", "grad_norm", "max_update_ratio"]
    assert spec["vconcat"][0]["encoding"]["color"]["scale"]["domain"] == ["stable", "broken"]
    assert all(p["encoding"]["y"]["scale"]["type"] == "log" for p in spec["vconcat"])


def test_stability_chart_draws_a_run_that_diverged_before_its_first_step_as_nothing():
    spec = charts.stability_chart({"stable": HISTORY, "broken": []}).to_dict()
    assert spec["vconcat"][0]["encoding"]["color"]["scale"]["domain"] == ["stable", "broken"]


def test_a_table_from_the_wrong_function_is_a_clear_error():
    with pytest.raises(ValueError, match="build it with attention.attention_map"):
        charts.attention_heatmap(positions.positional_encoding_frame(4, 4))


def test_attention_png_is_written(tmp_path, attentions):
    out = charts.save_attention_png(
        attention.attention_map(attentions, "cross", 0, TGT, SRC, head=1), tmp_path / "one.png"
    )
    assert out.read_bytes().startswith(PNG_MAGIC)
    grid = charts.save_attention_png(
        attention.attention_heads(attentions, "encoder_self", 1, SRC, SRC), tmp_path / "grid.png"
    )
    assert grid.read_bytes().startswith(PNG_MAGIC)
    with pytest.raises(ValueError, match="must end in .png"):
        charts.save_attention_png(attention.attention_map(attentions, "cross", 0, TGT, SRC), tmp_path / "x.jpg")


def test_history_png_is_written(tmp_path):
    out = charts.save_history_png({"stable": HISTORY, "broken": HISTORY[:3]}, tmp_path / "curves.png")
    assert out.read_bytes().startswith(PNG_MAGIC)
    single = charts.save_history_png(HISTORY, tmp_path / "one.png", metrics=["loss"])
    assert single.read_bytes().startswith(PNG_MAGIC)
    diverged_at_once = charts.save_history_png({"stable": HISTORY, "broken": []}, tmp_path / "d.png")
    assert diverged_at_once.read_bytes().startswith(PNG_MAGIC)
