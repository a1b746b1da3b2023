"""Inspection tables: the attention views hold the model's own weights, the positional encoding,
embeddings, weights and training-dynamics views have the shapes and values they promise."""

import math

import pytest
import torch

from model_zoo import Transformer, TransformerConfig
from model_zoo.scratch.layers import sinusoidal_encoding
from model_zoo.views import attention, dynamics, embeddings, positions, weights
from model_zoo.views.attention import step_tables

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
SRC_IDS, TGT_IN_IDS = [5, 6, 7, 8, 5], [1, 5, 6]
SRC_TOKENS = ["x", "y", "z", "w", "x"]  # a repeated token: labels must stay distinct
TGT_TOKENS = ["<bos>", "x", "y"]


def _weights(frame):
    return torch.tensor(frame["weight"].tolist(), dtype=torch.float32)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Transformer(TINY).eval()


@pytest.fixture(scope="module")
def reference(model):
    """The attention weights straight from the model's forward pass."""
    with torch.no_grad():
        return model(torch.tensor([SRC_IDS]), torch.tensor([TGT_IN_IDS]), return_attention=True).attentions


@pytest.fixture(scope="module")
def attentions(model):
    return attention.scratch_attention(model, SRC_IDS, TGT_IN_IDS)


@pytest.mark.parametrize("kind", attention.ATTENTION_KINDS)
def test_heatmap_data_equals_the_models_returned_weights(attentions, reference, kind):
    queries, keys = attention.attention_axes(kind, SRC_TOKENS, TGT_TOKENS)
    for layer in range(2):
        for head in range(2):
            frame = attention.attention_map(attentions, kind, layer, queries, keys, head=head)
            rebuilt = torch.zeros(len(queries), len(keys))
            rebuilt[frame["query_pos"].tolist(), frame["key_pos"].tolist()] = _weights(frame)
            torch.testing.assert_close(rebuilt, reference[kind][layer][0, head], rtol=0, atol=0)


def test_attention_map_rows_carry_token_labels_on_both_axes(attentions):
    frame = attention.attention_map(attentions, "cross", 1, TGT_TOKENS, SRC_TOKENS, head=0)
    assert len(frame) == len(TGT_TOKENS) * len(SRC_TOKENS)
    assert frame.drop_duplicates("query_pos")["query_token"].tolist() == TGT_TOKENS
    assert frame.drop_duplicates("key_pos")["key_token"].tolist() == SRC_TOKENS
    assert frame["key"].nunique() == len(SRC_TOKENS)  # "x" appears twice but gets two labels
    assert frame.groupby("query_pos")["weight"].sum().round(5).eq(1).all()


def test_heads_averaged_is_the_mean_of_every_head(attentions, reference):
    frame = attention.attention_map(attentions, "encoder_self", 0, SRC_TOKENS, SRC_TOKENS, head=None)
    assert set(frame["head"]) == {"mean"}
    expected = reference["encoder_self"][0][0].mean(dim=0).reshape(-1)
    torch.testing.assert_close(_weights(frame), expected)


def test_all_heads_of_a_layer_are_stacked_in_head_order(attentions, reference):
    frame = attention.attention_heads(attentions, "decoder_self", 1, TGT_TOKENS, TGT_TOKENS)
    assert frame["head"].drop_duplicates().tolist() == [0, 1]
    for head in (0, 1):
        weights = _weights(frame[frame["head"] == head])
        torch.testing.assert_close(weights, reference["decoder_self"][1][0, head].reshape(-1))


def test_follow_token_gives_its_row_in_every_layer_and_head(attentions, reference):
    frame = attention.follow_token(attentions, "cross", 2, TGT_TOKENS, SRC_TOKENS)
    assert len(frame) == 2 * 2 * len(SRC_TOKENS)
    assert set(frame["token"]) == {"y"}
    for (layer, head), rows in frame.groupby(["layer", "head"]):
        torch.testing.assert_close(_weights(rows), reference["cross"][layer][0, head, 2])
    column = attention.follow_token(attentions, "cross", 4, TGT_TOKENS, SRC_TOKENS, direction="to")
    rows = column[(column["layer"] == 1) & (column["head"] == 1)]
    torch.testing.assert_close(_weights(rows), reference["cross"][1][0, 1, :, 4])


def test_attention_views_take_hugging_face_style_tuples_without_a_batch_copy(reference):
    """HF models return a tuple per layer; a (H, Tq, Tk) tensor is accepted as one example."""
    hf_style = {"encoder_self": tuple(w[0] for w in reference["encoder_self"])}
    frame = attention.attention_map(hf_style, "encoder_self", 1, SRC_TOKENS, SRC_TOKENS, head=1)
    torch.testing.assert_close(_weights(frame), reference["encoder_self"][1][0, 1].reshape(-1))
    assert attention.available_kinds(hf_style) == ["encoder_self"]


def test_bad_attention_requests_say_what_to_fix(attentions):
    with pytest.raises(ValueError, match="layer=5 is out of range"):
        attention.attention_map(attentions, "cross", 5, TGT_TOKENS, SRC_TOKENS)
    with pytest.raises(ValueError, match="head=2 is out of range"):
        attention.attention_map(attentions, "cross", 0, TGT_TOKENS, SRC_TOKENS, head=2)
    with pytest.raises(ValueError, match="labels were given"):
        attention.attention_map(attentions, "cross", 0, SRC_TOKENS, SRC_TOKENS)
    with pytest.raises(ValueError, match="not an attention kind"):
        attention.attention_map(attentions, "self", 0, SRC_TOKENS, SRC_TOKENS)
    with pytest.raises(ValueError, match="No cross attention"):
        attention.attention_map({"encoder_self": attentions["encoder_self"]}, "cross", 0, TGT_TOKENS, SRC_TOKENS)


def test_scratch_attention_leaves_a_training_model_in_training_mode(model):
    model.train()
    try:
        attention.scratch_attention(model, SRC_IDS, TGT_IN_IDS)
        assert model.training
    finally:
        model.eval()


def test_positional_encoding_frame_is_the_sinusoid():
    frame = positions.positional_encoding_frame(d_model=16, max_len=10)
    assert len(frame) == 160
    pe = sinusoidal_encoding(10, 16)
    row = frame[(frame["position"] == 3) & (frame["dimension"] == 4)]
    assert row["value"].item() == pytest.approx(pe[3, 4].item())


def test_position_similarity_is_largest_on_the_diagonal_and_depends_only_on_distance():
    frame = positions.positional_similarity_frame(d_model=32, max_len=12)
    matrix = torch.tensor(frame.pivot(index="position_a", columns="position_b", values="similarity").to_numpy())
    assert matrix.shape == (12, 12)
    assert torch.all(matrix.diagonal() >= matrix.max(dim=1).values - 1e-5)
    for offset in (1, 3):  # every pair `offset` apart has the same similarity
        band = matrix.diagonal(offset)
        torch.testing.assert_close(band, torch.full_like(band, band[0].item()), atol=1e-4, rtol=0)


def test_embedding_projection_keeps_the_two_directions_of_largest_variance(model):
    table = embeddings.embedding_table(model, "src")
    labels = [f"t{i}" for i in range(table.size(0))]
    frame = embeddings.embedding_projection(table, labels, skip=[0])
    assert list(frame.columns) == ["token_id", "token", "x", "y"]
    assert len(frame) == table.size(0) - 1 and 0 not in frame["token_id"].tolist()
    centred = table[1:].double() - table[1:].double().mean(0)
    expected = torch.linalg.svdvals(centred)[:2].square() / centred.square().sum()
    assert frame.attrs["explained_variance"] == pytest.approx(expected.tolist())
    coords = torch.tensor(frame[["x", "y"]].to_numpy())
    assert coords.var(dim=0).tolist() == pytest.approx(
        (torch.linalg.svdvals(centred)[:2].square() / (len(frame) - 1)).tolist()
    )


def test_nearest_neighbours_are_sorted_by_cosine_and_exclude_the_token():
    table = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0]])
    frame = embeddings.nearest_neighbours(table, "a", labels=["a", "b", "c", "d"], k=3)
    assert frame["token"].tolist() == ["b", "c", "d"]
    assert frame["cosine"].iloc[-1] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="not in the vocabulary"):
        embeddings.nearest_neighbours(table, "zz", labels=["a", "b", "c", "d"])


def test_weight_stats_cover_every_parameter_with_the_right_numbers(model):
    stats = weights.weight_stats(model)
    params = dict(model.named_parameters())
    assert stats["name"].tolist() == list(params)
    row = stats[stats["name"] == "generator.weight"].iloc[0]
    w = params["generator.weight"].detach().double()
    assert row["count"] == w.numel() and row["shape"] == "11×16"
    assert row["norm"] == pytest.approx(w.norm().item())
    assert row["std"] == pytest.approx(w.std().item())
    assert row["group"] == "generator"


def test_weight_histogram_counts_every_value_once(model):
    hist = weights.weight_histogram(model, "encoder.layers.0.self_attn.in_proj.weight", bins=20)
    assert len(hist) == 20 and hist["count"].sum() == 48 * 16
    norm_hist = weights.weight_histogram(model, "encoder.norm.weight", bins=5)  # all ones
    assert norm_hist["count"].sum() == 16


def test_parameter_counts_add_up_to_the_models_total(model):
    counts = weights.parameter_counts(model)
    assert counts["module"].iloc[-1] == "total"
    assert counts["count"].iloc[-1] == model.num_parameters() == counts["count"].iloc[:-1].sum()
    assert counts["module"].iloc[:-1].tolist() == list(model.layer_groups())
    fine = weights.parameter_counts(model, level="module", include_total=False)
    assert fine["count"].sum() == model.num_parameters()
    assert "decoder.1.cross_attn" in fine["module"].tolist()


def test_parameter_counts_group_a_model_without_layer_groups_by_block():
    model = torch.nn.Module()
    model.layer = torch.nn.ModuleList([torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)])
    model.head = torch.nn.Linear(2, 1)
    counts = weights.parameter_counts(model, include_total=False)
    assert counts.set_index("module")["count"].to_dict() == {"layer.0": 6, "layer.1": 6, "head": 3}


HISTORY = [
    {
        "step": step,
        "loss": 2.0 / step,
        "token_accuracy": step / 10,
        "lr": 1e-3,
        "grad_norm": 1.0 + step,
        "tokens_per_s": 500.0,
        "grad_norm_per_layer": {"src_embed": 0.1 * step, "encoder.0": 0.2, "generator": 0.3},
        "update_ratio_per_layer": {"src_embed": 1e-3, "encoder.0": 2e-3, "generator": 3e-3},
        **({"exact_match": step / 10} if step % 5 == 0 else {}),
    }
    for step in range(1, 11)
]


def test_history_frame_is_one_row_per_step_with_nan_outside_evaluation():
    frame = dynamics.history_frame(HISTORY)
    assert len(frame) == 10 and frame.columns[0] == "step"
    assert frame["exact_match"].notna().sum() == 2
    assert "grad_norm_per_layer" not in frame
    assert frame["max_update_ratio"].eq(3e-3).all()  # the largest group's ratio each step


def test_metric_frame_is_long_and_drops_missing_values():
    long = dynamics.metric_frame(HISTORY, ["loss", "exact_match"])
    assert set(long["metric"]) == {"loss", "exact_match"}
    assert len(long) == 10 + 2


def test_per_layer_frame_keeps_the_models_group_order():
    frame = dynamics.per_layer_frame(HISTORY, "grad_norm_per_layer")
    assert len(frame) == 30
    assert frame.attrs["group_order"] == ["src_embed", "encoder.0", "generator"]
    assert frame[(frame["step"] == 4) & (frame["group"] == "src_embed")]["value"].item() == pytest.approx(0.4)
    with pytest.raises(ValueError, match="must be one of"):
        dynamics.per_layer_frame(HISTORY, "weights")


def test_history_summary_flags_a_non_finite_loss():
    summary = dynamics.history_summary(HISTORY)
    assert summary["steps"] == 10 and summary["final_loss"] == pytest.approx(0.2) and not summary["non_finite"]
    broken = HISTORY + [{"step": 11, "loss": math.nan, "grad_norm": math.inf}]
    assert dynamics.history_summary(broken)["non_finite"]


def test_empty_history_is_a_clear_error():
    with pytest.raises(ValueError, match="history is empty"):
        dynamics.history_frame([])


# -- on a trained copy model --------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_copy(one_torch_thread):
    from model_zoo.toy.tasks import make_task
    from model_zoo.toy.train_config import TrainConfig
    from model_zoo.toy.training import train

    task = make_task("copy", n_heldout=32)
    torch.manual_seed(0)
    model = Transformer(task.model_config(d_model=32, n_heads=2, d_ff=64, n_encoder_layers=1, n_decoder_layers=1))
    history = train(model, task, TrainConfig(steps=40, warmup=10, eval_every=20))
    return model, task, history


def test_projection_of_a_trained_copy_models_embeddings_has_the_expected_shape(trained_copy):
    model, task, _ = trained_copy
    for which in ("src", "tgt"):
        table = embeddings.embedding_table(model, which)
        assert table.shape == (len(task.vocab), 32)
        frame = embeddings.embedding_projection(table, task.vocab.itos, skip=[task.vocab.stoi["<pad>"]])
        assert frame.shape == (len(task.vocab) - 1, 4)
        assert frame["token"].tolist() == task.vocab.itos[1:]
        assert frame[["x", "y"]].notna().all().all()
        assert len(frame.attrs["explained_variance"]) == 2 and sum(frame.attrs["explained_variance"]) <= 1 + 1e-9
    neighbours = embeddings.nearest_neighbours(embeddings.embedding_table(model), "5", task.vocab.itos, k=4)
    assert len(neighbours) == 4 and "5" not in neighbours["token"].tolist()


def test_attention_for_text_labels_each_axis_with_what_the_model_read(trained_copy):
    from model_zoo.toy.decoding import decode_text

    model, task, _ = trained_copy
    seen = attention.attention_for_text(model, task.vocab, "3 5 7 zebra")
    assert seen.source_tokens == ["3", "5", "7", "<unk>"] and seen.unknown_words == ["zebra"]
    assert seen.target_tokens[0] == "<bos>" and len(seen.output_tokens) == len(seen.target_tokens)
    greedy = decode_text(model, task.vocab, "3 5 7 zebra")
    assert seen.target_tokens[1:] == greedy.tokens and seen.output_text == greedy.text
    queries, keys = seen.axes("cross")
    assert seen.attentions["cross"][0].shape == (1, 2, len(queries), len(keys))
    frame = attention.attention_map(seen.attentions, "cross", 0, queries, keys, head=1)
    assert len(frame) == len(queries) * len(keys)
    forced = attention.attention_for_text(model, task.vocab, "3 5", target="3 5")
    assert forced.target_tokens == ["<bos>", "3", "5"]


def test_training_history_views_follow_the_models_layer_groups(trained_copy):
    model, _, history = trained_copy
    wide = dynamics.history_frame(history)
    assert len(wide) == 40 and {"loss", "token_accuracy", "lr", "grad_norm", "exact_match"} <= set(wide.columns)
    assert wide["exact_match"].notna().sum() == 2  # steps 20 and 40
    for key in dynamics.PER_LAYER_KEYS:
        frame = dynamics.per_layer_frame(history, key)
        assert frame.attrs["group_order"] == list(model.layer_groups())
        assert len(frame) == 40 * len(model.layer_groups())


def test_step_tables_turn_a_decoding_step_into_bars_and_attention_rows():
    from model_zoo.toy.decoding import DecodingSession
    from model_zoo.toy.tasks import make_task

    task = make_task("copy", n_symbols=6, max_len=5, n_heldout=8)
    model = Transformer(task.model_config(d_model=16, n_heads=2, n_encoder_layers=2, n_decoder_layers=2, d_ff=32))
    step = DecodingSession(model, task.vocab, "3 4 5", show_top=4).step()
    top, cross = step_tables(step)
    assert list(top["token"]) == step.top_tokens and top["chosen"].sum() == 1
    assert len(cross) == 2 * 2 * 3  # layers × heads × source tokens
    assert cross.groupby("layer_head")["weight"].sum().round(5).eq(1).all()  # each row is a distribution
    _, one_head = step_tables(step, head=1)
    assert set(one_head["head"]) == {1}
