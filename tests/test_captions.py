"""The "what to look for" captions read the data: hand-made attention maps, histories and tables
with a known shape must give the sentence that names that shape, with the right numbers."""

import math
import re

import numpy as np
import pandas as pd
import pytest
import torch

from model_zoo import Transformer, TransformerConfig
from model_zoo.views import attention, embeddings, positions, weights
from model_zoo.views.figures.attention import (
    attention_caption,
    attention_change_caption,
    attention_pattern,
    follow_caption,
    heads_caption,
    strongest_head,
)
from model_zoo.views.figures.decoding import top_k_caption
from model_zoo.views.figures.embeddings import (
    embedding_caption,
    neighbours_caption,
    positional_caption,
    positional_similarity_caption,
)
from model_zoo.views.figures.finetuning import before_after_caption, confusion_caption, label_caption
from model_zoo.views.figures.training import (
    loss_caption,
    metric_caption,
    metric_name,
    per_layer_caption,
    runs_caption,
    stability_caption,
    update_ratio_caption,
)
from model_zoo.views.figures.weights import (
    gradcheck_caption,
    histogram_caption,
    parameter_caption,
    shapes_caption,
    speed_caption,
    weight_norms_chart,
    weights_caption,
)
from model_zoo.views.shapes import example_input, shape_trace


def frame_of(matrix, layer=1, head=2, keys=None) -> pd.DataFrame:
    """A hand-made matrix as the table `attention.attention_map` returns."""
    m = torch.tensor(np.asarray(matrix, dtype=np.float32))
    tq, tk = m.shape
    keys = keys or [str(j) for j in range(tk)]
    return attention.attention_map({"cross": [m[None, None]]}, "cross", 0, [str(i) for i in range(tq)], keys).assign(
        layer=layer, head=head
    )


def sharpened(index_of_row, n_keys, weight=0.91):
    """Each row puts `weight` on one key, the rest spread evenly."""
    rows = []
    for j in index_of_row:
        row = np.full(n_keys, (1 - weight) / (n_keys - 1))
        row[j] = weight
        rows.append(row)
    return np.array(rows)


# -- attention ------------------------------------------------------------------------------------
def test_a_diagonal_map_is_named_a_diagonal_and_copy():
    text = attention_caption(frame_of(sharpened(range(6), 6)))
    assert "Head 2 of layer 1 puts 91% of its weight on the diagonal" in text
    assert "copy" in text
    assert "causal" not in text  # the upper triangle is not zero


def test_an_anti_diagonal_map_is_named_reverse():
    pattern = attention_pattern(sharpened(range(5)[::-1], 5, 0.8))
    assert pattern.name == "anti-diagonal" and pattern.share == pytest.approx(0.8)
    assert "reverse" in attention_caption(frame_of(sharpened(range(5)[::-1], 5, 0.8)))


def test_an_anti_diagonal_offset_by_the_target_length_is_still_reverse():
    # Cross-attention of reverse: 4 target queries over 4 source keys, the last query (predicting <eos>) anywhere.
    matrix = np.vstack([sharpened([3, 2, 1, 0], 4, 0.9)[:3], np.full(4, 0.25)])
    assert attention_pattern(matrix).name == "anti-diagonal"


def test_a_zero_upper_triangle_is_the_causal_mask():
    lower = np.tril(np.ones((5, 5)))
    lower /= lower.sum(axis=1, keepdims=True)  # each query averages over itself and the past
    pattern = attention_pattern(lower)
    assert pattern.causal
    assert "upper triangle is zero: the causal mask" in attention_caption(frame_of(lower))


def test_a_permutation_is_named_sort_only_when_it_reads_the_keys_in_sorted_order():
    pattern = attention_pattern(sharpened([2, 0, 3, 1], 4, 0.85))
    assert pattern.name == "sharp" and pattern.share == pytest.approx(0.85)
    unsorted = attention_caption(frame_of(sharpened([2, 0, 3, 1], 4, 0.85)))
    assert "a permutation" in unsorted and "sort" not in unsorted
    # source "7 2 9 4": the queries pick 2, 4, 7, 9 (positions 1, 3, 0, 2), the sorted order
    sorting = attention_caption(frame_of(sharpened([1, 3, 0, 2], 4, 0.85), keys=["7", "2", "9", "4"]))
    assert "how sort is solved" in sorting


def test_one_favoured_key_is_named_with_its_token():
    matrix = np.full((4, 5), 0.05)
    matrix[:, 4] = 0.8
    text = attention_caption(frame_of(matrix, keys=["a", "b", "c", "d", "<eos>"]))
    assert "80% of its weight on one key, position 4 ('<eos>')" in text and "special token" in text


def test_a_previous_token_head_and_a_uniform_head():
    assert attention_pattern(sharpened([0, 0, 1, 2, 3], 5, 0.7)).name == "previous"
    uniform = attention_caption(frame_of(np.full((4, 4), 0.25), head="mean"))
    assert uniform.startswith("The mean of the heads of layer 1 spreads its weight")
    assert "25%" in uniform and "pick one head" in uniform


def test_heads_caption_names_the_clearest_head():
    stack = torch.tensor(np.stack([np.full((4, 4), 0.25), sharpened(range(4), 4, 0.93)]), dtype=torch.float32)
    frame = attention.attention_heads({"cross": [stack[None]]}, "cross", 0, list("abcd"), list("wxyz"))
    text = heads_caption(frame)
    assert "Head 1 is the clearest: 93% of its weight on the diagonal" in text
    assert "Head 0 spreads" in text and "different patterns" in text


def test_strongest_head_finds_the_diagonal_head_among_all_layers():
    layer0 = torch.full((1, 2, 4, 4), 0.25)
    layer1 = torch.tensor(np.stack([np.full((4, 4), 0.25), sharpened(range(4), 4, 0.9)]), dtype=torch.float32)[None]
    layer, head, pattern = strongest_head({"cross": [layer0, layer1]}, "cross", ["diagonal"])
    assert (layer, head, pattern.name) == (1, 1, "diagonal")
    sharper_but_no_line = torch.tensor(sharpened([2, 0, 3, 1], 4, 0.95), dtype=torch.float32)[None, None]
    both = {"cross": [sharper_but_no_line, layer1]}
    assert strongest_head(both, "cross", ["diagonal", "sharp"])[:2] == (1, 1)  # the line comes first
    assert strongest_head(both, "cross")[2].name == "sharp"  # no preference: the largest share
    with pytest.raises(ValueError, match="No decoder_self attention"):
        strongest_head({"cross": [layer0]}, "decoder_self")


def test_the_loss_caption_says_which_points_its_level_averages():
    """The loss metric above the chart is the last step's; the caption's level is the mean of the
    curve's last tenth, and says so (it read "Now 1.62" under a metric of 1.630)."""
    history = [{"step": i, "loss": 3.0 - 0.01 * i + 0.05 * (i % 2)} for i in range(100)]
    mean = sum(e["loss"] for e in history[-10:]) / 10
    assert f"The last 10 points of the curve average {mean:.2f} ≈ ln {math.exp(mean):.1f}" in loss_caption(history, 20)


def test_follow_caption_counts_the_heads_that_agree():
    weights = torch.tensor(np.stack([sharpened([1, 1, 2], 3, 0.7)] * 2), dtype=torch.float32)  # (H=2, 3, 3)
    frame = attention.follow_token({"encoder_self": [weights[None]]}, "encoder_self", 0, list("abc"), list("abc"))
    text = follow_caption(frame)
    assert "In 2 of 2 layer-heads the largest weight from token 0 ('a') goes to '1: b'" in text


def test_follow_caption_names_the_sharpest_and_the_most_spread_layer_from_the_weights():
    """No rule of thumb ("the last layers decide"): the layer whose heads put the most on their
    favourite token, and the one that puts the least, each with its average, as drawn."""
    sharp = np.stack([sharpened([1, 2, 0], 3, 0.9), sharpened([2, 2, 0], 3, 0.8)])  # (H=2, 3, 3): 85% on average
    spread = np.stack([sharpened([1, 1, 1], 3, 0.4), sharpened([0, 0, 0], 3, 0.5)])  # 45% on average
    seen = {"encoder_self": [torch.tensor(w, dtype=torch.float32)[None] for w in (spread, sharp)]}
    text = follow_caption(attention.follow_token(seen, "encoder_self", 0, list("abc"), list("abc")))
    assert text.endswith(
        " Layer 1 decides most sharply here (its heads give their favourite token 85% on average), "
        "layer 0 looks around most (45%)."
    )
    alike = {"encoder_self": [torch.tensor(sharp, dtype=torch.float32)[None]] * 2}
    assert "Layer" not in follow_caption(attention.follow_token(alike, "encoder_self", 0, list("abc"), list("abc")))


def test_follow_caption_of_a_column_says_who_looks_at_the_token():
    """Followed "to" (its column), the heads' largest weights are other tokens looking at it: the
    caption says so, and a column's weights (not one distribution) get no sharpness sentence."""
    weights = torch.tensor(np.stack([sharpened([1, 1, 2], 3, 0.7)] * 2), dtype=torch.float32)  # (H=2, 3, 3)
    seen = {"encoder_self": [weights[None]] * 2}
    text = follow_caption(attention.follow_token(seen, "encoder_self", 1, list("abc"), list("abc"), "to"), "to")
    assert text.startswith("In 4 of 4 layer-heads the token that looks hardest at token 1 ('b') is '0: a'")
    assert "from token" not in text and "Layer" not in text


def test_the_last_tokens_column_under_the_causal_mask_is_called_the_mask():
    from model_zoo.scratch.transformer import build_model

    torch.manual_seed(0)
    cfg = TransformerConfig(src_vocab_size=8, tgt_vocab_size=8, d_model=16, n_heads=2, n_encoder_layers=0,
                            n_decoder_layers=2, d_ff=32, max_len=8)  # fmt: skip
    with torch.no_grad():
        seen = build_model(cfg).eval()(torch.tensor([[4, 5, 6, 7]]), return_attention=True).attentions
    last = attention.follow_token(seen, "decoder_self", 3, list("abcd"), list("abcd"), "to")
    assert (last.loc[last["other_pos"] != 3, "weight"] == 0).all()  # what the caption says is so
    assert follow_caption(last, "to").startswith("In every layer-head only token 3 ('d') itself looks at it")
    earlier = follow_caption(attention.follow_token(seen, "decoder_self", 1, list("abcd"), list("abcd"), "to"), "to")
    assert earlier.startswith("In ") and "mask" not in earlier


def test_the_first_tokens_row_under_the_causal_mask_is_called_the_mask_not_a_choice():
    """A decoder-only model's token 0 can see only itself: 100% on itself in every head is the mask.
    Said for that row only; a later token's row, and token 0 of the encoder, read as usual."""
    from model_zoo.scratch.transformer import build_model

    torch.manual_seed(0)
    cfg = TransformerConfig(src_vocab_size=8, tgt_vocab_size=8, d_model=16, n_heads=2, n_encoder_layers=0,
                            n_decoder_layers=2, d_ff=32, max_len=8)  # fmt: skip
    model = build_model(cfg).eval()
    tokens = list("abcd")
    with torch.no_grad():
        seen = model(torch.tensor([[4, 5, 6, 7]]), return_attention=True).attentions
    first = attention.follow_token(seen, "decoder_self", 0, tokens, tokens)
    assert (first.loc[first["other_pos"] == 0, "weight"] == 1.0).all()  # what the caption says is so
    assert follow_caption(first) == (
        "Every layer-head puts all of token 0's ('a') weight on itself: under the causal mask the first token "
        "can see only itself. That is the mask, not something the model learned: pick a later token to see what "
        "it chooses."
    )
    later = follow_caption(attention.follow_token(seen, "decoder_self", 2, tokens, tokens))
    assert later.startswith("In ") and "mask" not in later
    weights = torch.tensor(np.stack([sharpened([0, 0, 0], 3, 1.0)] * 2), dtype=torch.float32)  # all on key 0
    encoder = attention.follow_token({"encoder_self": [weights[None]]}, "encoder_self", 0, list("abc"), list("abc"))
    assert "mask" not in follow_caption(encoder)  # no causal mask there: whatever it is, it was learned


def test_a_matrix_that_is_not_2d_is_refused():
    with pytest.raises(ValueError, match="must be 2-D"):
        attention_pattern(np.ones(4))


# -- training ------------------------------------------------------------------------------------
def history(losses, **extra):
    return [{"step": i + 1, "loss": loss, **{k: v[i] for k, v in extra.items()}} for i, loss in enumerate(losses)]


def test_a_loss_stuck_at_ln_10_is_read_as_guessing_among_10_symbols():
    run = history([2.6, 2.4] + [math.log(10) + 0.01 * (-1) ** i for i in range(20)])
    text = loss_caption(run, vocab_size=14, n_symbols=10)
    assert "plateaued at 2.30 ≈ ln 10 = 2.30: guessing among the 10 symbols" in text
    assert "ln 14 = 2.64" in text


def test_a_loss_near_zero_is_read_as_certain():
    assert "nearly certain" in loss_caption(history([2.6, 1.0, 0.2, 0.01, 0.005]), vocab_size=14)


def test_update_ratio_near_1e_3_is_healthy_and_far_above_is_not():
    assert "near 1e-3, the healthy range" in update_ratio_caption([8e-4, 1.2e-3, 1e-3])
    assert "too high" in update_ratio_caption([0.3, 0.5, 0.2])
    assert "barely move" in update_ratio_caption([1e-6, 2e-6])
    run = [{"step": s, "update_ratio_per_layer": {"a": 1e-3, "b": 5e-4}} for s in range(1, 9)]
    assert "healthy" in metric_caption(run, "max_update_ratio")


def test_gradient_spikes_and_learning_rate_warmup_are_found():
    grads = [0.5] * 10
    grads[6] = 40.0
    run = history([1.0] * 10, grad_norm=grads, lr=[1e-4 * min(s, 4) / (1 + 0.1 * s) for s in range(1, 11)])
    assert "largest 40 at step 7: a spike" in metric_caption(run, "grad_norm")
    lr = metric_caption(run, "lr")
    assert "peak" in lr and "step 4" in lr and "warmup" in lr
    warming = history([1.0] * 5, lr=[1e-4 * s for s in range(1, 6)])
    assert "still warming up: 0.0001 → 0.0005 over 5 steps" in metric_caption(warming, "lr")


def test_accuracy_caption_says_when_99_percent_was_reached():
    run = history([1.0] * 4, token_accuracy=[0.1, 0.5, 0.995, 1.0])
    assert "10% → 100%; it first reached 99% at step 3" in metric_caption(run, "token_accuracy")


def test_per_layer_caption_names_the_groups_outside_the_healthy_range():
    rows = [(s, g, v) for s in range(1, 11) for g, v in (("encoder.0", 1e-3), ("generator", 0.2))]
    frame = pd.DataFrame(rows, columns=["step", "group", "value"])
    text = per_layer_caption(frame, "update_ratio_per_layer")
    assert "generator moves most" in text and "outside 1e-4 to 1e-2: generator" in text


def test_stability_and_runs_captions_name_each_run():
    stable = history([2.5, 1.0, 0.1], grad_norm=[1.0, 0.8, 0.3], exact_match=[0.0, 0.5, 1.0])
    broken = history([2.5, 9.0, 2.4], grad_norm=[1.0, 300.0, 50.0], exact_match=[0.0, 0.0, 0.0])
    text = stability_caption({"stable": stable, "broken": broken})
    assert "stable: loss 2.50 → 0.10" in text and "broken: loss 2.50 → 2.40, largest gradient norm 300" in text
    runs = runs_caption({"a": stable, "b": broken})
    assert "a: 99% exact match at step 3" in runs and "b: 0% exact match" in runs


# -- positions, embeddings, weights, shapes --------------------------------------------------------------
def test_positional_caption_gives_the_wavelengths():
    text = positional_caption(64, 50)
    assert "from 6.3 positions" in text and "47,117" in text  # 2π and 2π · 10000^(62/64)
    sim = positional_similarity_caption(positions.positional_similarity_frame(64, 30))
    assert sim.startswith("A position with itself scores 32.0 (= D / 2")


def test_the_similarity_caption_says_the_ripples_the_map_shows():
    """It once said 'similarity falls with distance' under a map whose stripes beside the diagonal
    are distances where the score rises again (at D = 64 over 50 positions: 17 of 49)."""
    from model_zoo.scratch.layers import sinusoidal_encoding

    pe = sinusoidal_encoding(50, 64)
    profile = [float(pe[0] @ pe[d]) for d in range(50)]
    rises = sum(profile[d] > profile[d - 1] for d in range(1, 50))
    text = positional_similarity_caption(positions.positional_similarity_frame(64, 50))
    assert f"in ripples (the stripes beside the diagonal): it rises again at {rises} of the 49 distances" in text
    low_at, high_at = (int(x) for x in re.search(r"at distance (\d+) to [\d.]+ at distance (\d+)", text).groups())
    assert profile[high_at] > profile[low_at]  # the example is a real climb
    near = positional_similarity_caption(positions.positional_similarity_frame(64, 6))  # 0..5: it only falls
    assert ": similarity falls with distance. The score" in near and "ripples" not in near


def test_embedding_caption_explains_pca_and_the_variance_kept():
    frame = pd.DataFrame({"token_id": [4, 5, 6], "token": ["a", "b", "c"], "x": [0.0, 0.1, 3.0], "y": [0.0, 0.0, 1.0]})
    frame.attrs["explained_variance"] = [0.12, 0.09]
    text = embedding_caption(frame, d_model=64)
    assert "12% + 9% = 21% of the spread" in text and "check the neighbours" in text
    assert "Closest pair in the picture: 'a' and 'b'" in text and "(64 numbers each)" in text


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Transformer(TransformerConfig(d_model=16, n_heads=2, d_ff=32, n_encoder_layers=1, n_decoder_layers=1))


def test_parameter_and_weight_captions_read_the_tables(model):
    counts = weights.parameter_counts(model, level="module")
    text = parameter_caption(counts)
    feed = counts[counts["module"].str.contains("feed_forward")]["count"].sum() / model.num_parameters()
    assert f"Feed-forward layers hold {feed:.0%}" in text and "cross-attention" in text
    stats = weights.weight_stats(model)
    assert "LayerNorm gains average 1.00 (they start at 1)" in weights_caption(stats)
    # the caption's first number is the chart's longest bar (a part's matrices together), then the largest matrix
    bars = weight_norms_chart(stats).to_dict()["datasets"]
    longest = max(next(iter(bars.values())), key=lambda row: row["norm"])
    largest = stats.loc[stats["norm"].idxmax()]
    assert weights_caption(stats).startswith(
        f"The longest bar is the {longest['part']} of {longest['group']} ({longest['norm']:.2f}: its matrices and "
        f"biases together); the largest single matrix is {largest['name']} ({largest['norm']:.2f})."
    )
    assert longest["norm"] > largest["norm"]  # a part of two or more matrices outgrows each of them
    hist = histogram_caption(weights.weight_histogram(model, "generator.weight"))
    assert hist.startswith(f"{16 * 16:,} values of generator.weight")


def test_shapes_caption_names_the_width_the_vocabulary_and_the_attention_letters(model):
    rows = shape_trace(model, *example_input(model.cfg, 6, 5))
    text = shapes_caption(rows)
    assert "(1, 6, 16)" in text and "(1, 5, 16) = (B, T, V)" in text
    assert "(1, 2, 6, 6) are (B, H, queries, keys)" in text


def test_gradcheck_caption_reports_the_worst_component():
    rows = [
        {"component": "attention", "passed": True, "max_abs_error": 1e-10},
        {"component": "decoder block", "passed": True, "max_abs_error": 3e-9},
    ]
    assert "All 2 components agree" in gradcheck_caption(rows) and "3.0e-09 (decoder block)" in (
        gradcheck_caption(rows)
    )


@pytest.mark.parametrize(
    "cosine, verdict",
    [(0.9, "Here they are close"), (0.3, "only loosely alike"), (0.18, "even the nearest is nearly unrelated")],
)
def test_neighbours_caption_does_not_call_a_cosine_near_0_alike(cosine, verdict):
    """The sort example's '1' has '8' nearest at cosine 0.18: the caption once left it at 'tokens the
    model uses alike end up close', as if the two were alike."""
    table = pd.DataFrame({"rank": [1, 2], "token": ["8", "2"], "cosine": [cosine, cosine - 0.05]})
    text = neighbours_caption(table, "1")
    assert f"as '8' (cosine {cosine:.2f})" in text and verdict in text


def test_a_layernorm_gains_histogram_is_read_against_its_start_at_1(model):
    """An untouched LayerNorm gain (all 1) was said to be 'centred at 1.00, away from 0', as if it had moved."""
    gain = histogram_caption(weights.weight_histogram(model, "encoder.layers.0.norm1.weight"))
    assert "centred near 1, as initialised" in gain
    with torch.no_grad():
        model.encoder.layers[0].norm1.bias.add_(0.5)  # a bias far from its start
    try:
        bias = histogram_caption(weights.weight_histogram(model, "encoder.layers.0.norm1.bias"))
    finally:
        with torch.no_grad():
            model.encoder.layers[0].norm1.bias.sub_(0.5)
    assert re.search(r"centred at 0\.5\d, away from where it started \(0\)", bias), bias


def test_neighbours_caption_names_the_nearest(model):
    table = embeddings.nearest_neighbours(embeddings.embedding_table(model), 5, k=3)
    assert f"points most nearly the same way as {table['token'].iloc[0]!r}" in neighbours_caption(table, "5")


# -- decoding and classification ---------------------------------------------------------------------
def test_top_k_caption_reads_the_most_likely_and_a_sampled_choice():
    frame = pd.DataFrame(
        {
            "rank": [1, 2, 3],
            "token": ["<eos>", "7", "3"],
            "probability": [0.05, 0.9, 0.03],
            "chosen": [True, False, False],
        }
    )
    text = top_k_caption(frame)
    assert text.startswith("The model gives '7' 90%, the runner-up '<eos>' 5%: it is sure.")
    assert "Sampling chose '<eos>' (p = 0.05), not the most likely" in text


def test_confusion_caption_spots_majority_class_behaviour():
    text = confusion_caption([[48, 2], [47, 3]], ["negative", "positive"])
    assert "predicts 'negative' for 95% of the sentences: majority-class behaviour" in text
    good = confusion_caption([[40, 10], [5, 45]], ["negative", "positive"])
    assert good.startswith("85% on the diagonal") and "'negative' read as 'positive' (10 times)" in good


def test_before_after_caption_explains_why_macro_f1_jumps_more():
    text = before_after_caption({"accuracy": 0.5, "macro_f1": 0.34}, {"accuracy": 0.8, "macro_f1": 0.79})
    assert "accuracy 0.50 → 0.80 (+0.30); macro-F1 0.34 → 0.79 (+0.45)." in text and "mostly one label" in text


def test_before_after_caption_spots_a_model_that_fell_into_one_label():
    text = before_after_caption({"accuracy": 0.45, "macro_f1": 0.43}, {"accuracy": 0.58, "macro_f1": 0.37})
    assert "Accuracy rose while macro-F1 fell" in text


def test_attention_change_caption_measures_how_far_fine_tuning_moved_a_map():
    before = sharpened(range(4), 4, 0.7)
    after = before.copy()
    after[2] = [0.15, 0.15, 0.45, 0.25]  # one query moved 0.25 away from its diagonal
    text = attention_change_caption(frame_of(before), frame_of(after))
    mean = np.abs(after - before).mean()
    # the numbers of this map, and no rule of thumb ("the last layers change most") the map does not show
    assert (
        text
        == f"Fine-tuning moved these weights by {mean:.3f} on average and 0.25 at most ('2' → '2': 0.70 → 0.45): this map changed."
    )
    with pytest.raises(ValueError, match="different shapes"):
        attention_change_caption(frame_of(before), frame_of(before[:3]))


def test_label_and_speed_captions():
    assert "coin toss" in label_caption({"negative": 0.52, "positive": 0.48})
    assert "'positive' with 95% (confident" in label_caption({"negative": 0.05, "positive": 0.95})
    assert "faster" in speed_caption(0.67) and "slower" in speed_caption(1.8)


def test_metric_names_are_words():
    assert metric_name("lr") == "learning rate" and metric_name("grad_norm") == "gradient norm"
    assert metric_name("some_new_key") == "some new key"
