"""The paper's own models: presets counted against Table 3, the table's rows, Figure 1's parts."""

import pytest
import torch
from app_page import open_page  # tests/app_page.py

from model_zoo import Transformer, TransformerConfig
from model_zoo.scratch.paper import (
    TABLE_3,
    count_with_head_sizes,
    figure_1_dot,
    figure_1_parts,
    row_config,
    table_3,
    table_3_caption,
)


@pytest.mark.parametrize(
    ("preset", "paper_millions"), [(TransformerConfig.paper_base, 65), (TransformerConfig.paper_big, 213)]
)
def test_paper_presets_match_table_3_within_three_percent_built_on_the_meta_device(preset, paper_millions):
    config = preset()
    with torch.device("meta"):  # shapes only: nothing allocated, nothing initialised
        model = Transformer(config)
    assert all(p.is_meta for p in model.parameters())
    assert model.num_parameters() == config.n_parameters()
    assert abs(model.num_parameters() - paper_millions * 1e6) / (paper_millions * 1e6) <= 0.03


def test_paper_presets_share_one_vocabulary_three_ways_and_take_its_size():
    config = TransformerConfig.paper_base(vocab_size=1000)
    assert (config.src_vocab_size, config.tgt_vocab_size, config.share_embeddings) == (1000, 1000, True)
    assert (config.d_model, config.n_heads, config.d_ff, config.n_encoder_layers, config.dropout) == (
        512,
        8,
        2048,
        6,
        0.1,
    )
    big = TransformerConfig.paper_big()
    assert (big.d_model, big.n_heads, big.d_ff, big.dropout) == (1024, 16, 4096, 0.3)


def test_paper_base_without_sharing_has_the_two_extra_matrices_the_issue_counted():
    shared = TransformerConfig.paper_base().n_parameters()
    tied_only = TransformerConfig.paper_base(share_embeddings=False, tie_embeddings=True).n_parameters()
    assert tied_only - shared == 37_000 * 512  # the source embedding, no longer shared


def test_head_size_count_equals_the_config_count_whenever_heads_split_d_model():
    for row in TABLE_3:
        if row.n_heads * row.d_k == row.d_model == row.n_heads * row.d_v:
            assert count_with_head_sizes(row) == row_config(row).n_parameters()


def test_table_3_rows_with_the_papers_shapes_are_within_seven_percent_and_b_rows_explained():
    rows = table_3()
    assert len(rows) == len(TABLE_3)
    for row in rows:
        if row["paper (M)"] is None:
            assert row["ours (M)"] == rows[0]["ours (M)"]  # (A): h × d_k = d_model, the base's matrices
        elif row["row"] == "(B)":
            assert "d_k" in row["why"] and row["difference"] > 0.03  # ours cannot narrow W_Q, W_K
            counted = float(row["why"].rsplit(": ", 1)[1].split(" M")[0])
            assert abs(counted - row["paper (M)"]) / row["paper (M)"] < 0.04  # with the paper's d_k, it fits
        else:
            assert abs(row["difference"]) < 0.07


def test_table_3_caption_names_the_base_counts_and_the_furthest_row():
    rows = table_3()
    caption = table_3_caption(rows)
    assert "base: 63.1 M against 65 M" in caption
    assert "furthest: row (C) with N=2" in caption
    assert "Row big is 1.3 M above" in caption


def test_figure_1_parts_sum_to_the_models_parameters_without_allocating():
    for config in (TransformerConfig.paper_base(), TransformerConfig(), TransformerConfig(tie_embeddings=True)):
        parts = figure_1_parts(config)
        assert sum(p.parameters for p in parts) == config.n_parameters()


def test_figure_1_parts_show_the_base_models_real_shapes():
    parts = {p.box: p for p in figure_1_parts(TransformerConfig.paper_base())}
    assert parts["Input Embedding"].parameters == 37_000 * 512
    assert parts["Output Embedding"].parameters == 0 and "shared" in parts["Output Embedding"].weights
    attention = parts["Encoder: Multi-Head Attention"]
    assert attention.copies == 6 and attention.parameters == 6 * (4 * 512 * 512 + 4 * 512)
    assert "(1536, 512)" in attention.weights
    assert parts["Decoder: Feed Forward"].parameters == 6 * (2 * 512 * 2048 + 2048 + 512)
    assert parts["Linear"].parameters == 37_000  # its matrix is the embedding; only the bias is its own
    assert parts["Linear"].output == "logits (B, T, V=37000)"


def test_figure_1_dot_is_one_graph_with_every_part_and_the_total():
    dot = figure_1_dot(TransformerConfig.paper_base())
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    assert "63,121,544 parameters in all" in dot
    assert dot.count("[label=") == len(figure_1_parts()) + 1  # every box, and the memory edge


def test_build_page_shows_the_papers_figure_1_counts_and_table_3(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_RAISE", "1")
    at = open_page("build")
    captions = " ".join(str(c.value) for c in at.caption)
    assert "**63,121,544 parameters** at a vocabulary of 37,000, against the paper's 65 M" in captions
    assert table_3_caption(table_3()) in captions
    parts, rows = at.dataframe[-2].value, at.dataframe[-1].value
    assert parts["parameters"].sum() == TransformerConfig.paper_base().n_parameters()
    assert list(rows["paper (M)"].dropna()) == [r.paper_millions for r in TABLE_3 if r.paper_millions is not None]

    at.radio(key="build_paper_size").set_value("big").run()
    assert not at.exception, at.exception
    assert at.dataframe[-2].value["parameters"].sum() == TransformerConfig.paper_big().n_parameters()
    assert "against the paper's 213 M" in " ".join(str(c.value) for c in at.caption)


# -- three families from the same blocks ----------------------------------------------------------------
FAMILY_SETTINGS = [
    TransformerConfig(),
    TransformerConfig(d_model=96, n_heads=4, n_encoder_layers=3, n_decoder_layers=1, d_ff=384, tie_embeddings=True),
    TransformerConfig.paper_base(),
]


@pytest.mark.parametrize("cfg", FAMILY_SETTINGS, ids=["default", "tied", "paper-base"])
def test_encoder_only_count_equals_its_built_stack_of_the_papers_encoder_blocks(cfg):
    from model_zoo.scratch.families import EncoderOnlyTransformer
    from model_zoo.scratch.layers import Encoder, EncoderBlock

    with torch.device("meta"):
        model = EncoderOnlyTransformer(cfg)
        stack = Encoder(cfg.n_encoder_layers, d_model=cfg.d_model, n_heads=cfg.n_heads, d_ff=cfg.d_ff,
                        dropout=0.0, activation=cfg.activation, norm_first=cfg.norm_first, eps=cfg.layer_norm_eps)  # fmt: skip
    assert all(type(block) is EncoderBlock for block in model.encoder.layers)  # the same blocks, not a copy
    stack_count = sum(p.numel() for p in stack.parameters())
    embedding, output = (
        cfg.src_vocab_size * cfg.d_model,
        cfg.src_vocab_size * (1 if cfg.output_tied else cfg.d_model + 1),
    )
    assert model.num_parameters() == encoder_only_parameters(cfg) == stack_count + embedding + output


def test_three_families_count_what_each_builds_and_say_which_attention_each_has():
    from model_zoo.scratch.families import families, family_dot

    cfg = TransformerConfig(d_model=32, n_heads=2, n_encoder_layers=2, n_decoder_layers=3, d_ff=64)
    by_name = {f.name: f for f in families(cfg)}
    assert by_name["encoder-decoder"].parameters == cfg.n_parameters()
    decoder_only = TransformerConfig(d_model=32, n_heads=2, n_encoder_layers=0, n_decoder_layers=3, d_ff=64)
    assert by_name["decoder-only"].parameters == decoder_only.n_parameters()
    # the encoder-decoder is the encoder-only's stack plus the decoder-only's, with one more LayerNorm,
    # cross-attention in each decoder block, and no second output layer
    d, v = 32, cfg.tgt_vocab_size
    cross = cfg.n_decoder_layers * (4 * d * d + 4 * d + 2 * d)
    assert by_name["encoder-decoder"].parameters == (
        by_name["encoder-only"].parameters + by_name["decoder-only"].parameters + cross - v * (d + 1)
    )
    assert [f.cross_attention for f in by_name.values()] == [True, False, False]
    assert (
        "causal" in by_name["decoder-only"].self_attention
        and "before and after" in by_name["encoder-only"].self_attention
    )
    assert "cross-attention" in family_dot(by_name["encoder-decoder"])
    assert "cross-attention" not in family_dot(by_name["decoder-only"]) + family_dot(by_name["encoder-only"])
    assert "masked" not in family_dot(by_name["encoder-only"])


def test_encoder_only_reads_every_token_where_decoder_only_reads_only_earlier_ones():
    from model_zoo.scratch.families import EncoderOnlyTransformer
    from model_zoo.scratch.transformer import build_model

    torch.manual_seed(0)
    cfg = TransformerConfig(d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32)
    encoder_only = EncoderOnlyTransformer(cfg).eval()
    decoder_only = build_model(
        TransformerConfig(d_model=16, n_heads=2, n_encoder_layers=0, n_decoder_layers=1, d_ff=32)
    ).eval()
    a, b = torch.tensor([[4, 5, 6, 7]]), torch.tensor([[4, 5, 6, 9]])  # only the last token differs
    with torch.no_grad():
        assert not torch.allclose(encoder_only(a).logits[0, 0], encoder_only(b).logits[0, 0])  # reads ahead
        assert torch.allclose(decoder_only(a).logits[0, 0], decoder_only(b).logits[0, 0])  # never does
        out = encoder_only(a, return_attention=True)
    assert out.logits.shape == (1, 4, cfg.src_vocab_size)
    assert out.attentions["encoder_self"][0].shape == (1, 2, 4, 4) and out.attentions["encoder_self"][0][0, 0, 0, 3] > 0


def test_build_page_shows_the_three_families_at_the_students_settings(monkeypatch, tmp_path):
    from model_zoo.scratch.families import families

    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_RAISE", "1")
    at = open_page("build")
    at.number_input(key="build_n_dec").set_value(3).run()
    assert not at.exception, at.exception
    table = next(d.value for d in at.dataframe if "family" in d.value.columns)
    cfg = TransformerConfig(n_decoder_layers=3)
    assert list(table["parameters"]) == [f.parameters for f in families(cfg)]
    assert [name.split(" (")[0] for name in table["family"]] == ["encoder-decoder", "decoder-only", "encoder-only"]
    assert len(at.get("graphviz_chart")) >= 3


def test_families_caption_says_gpt_and_bert_blocks_weigh_the_same_and_names_the_difference_in_depth():
    from model_zoo.scratch.families import families, families_caption

    same = families_caption(families(TransformerConfig()))  # 2 + 2 blocks: the two one-stack models tie
    assert "have the same 102,160 parameters" in same and "only the causal mask" in same
    deeper = families(TransformerConfig(n_encoder_layers=3))
    by_name = {f.name: f for f in deeper}
    gap = by_name["encoder-only"].parameters - by_name["decoder-only"].parameters
    assert gap > 0 and f"The encoder-only model has {gap:,} more parameters than the decoder-only" in families_caption(
        deeper
    )


def encoder_only_parameters(cfg: TransformerConfig) -> int:
    """How many parameters `EncoderOnlyTransformer(cfg)` should have, counted by hand from the config
    (the test's reference) (as `TransformerConfig.n_parameters` counts the encoder-decoder)."""
    d, f = cfg.d_model, cfg.d_ff
    block = (4 * d * d + 4 * d) + (2 * d * f + f + d) + 2 * (2 * d)  # attention, feed-forward, two LayerNorms
    output = cfg.src_vocab_size * (1 if cfg.output_tied else d + 1)  # tied: only its bias is new
    return cfg.src_vocab_size * d + cfg.n_encoder_layers * block + 2 * d + output
