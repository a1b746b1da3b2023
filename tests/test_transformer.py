"""The scratch Transformer: shapes, masks, learning, the safetensors round trip and clear errors."""

import dataclasses
import json

import pytest
import torch

from model_zoo import Transformer, TransformerConfig
from model_zoo.scratch.layers import DecoderBlock, sinusoidal_encoding
from model_zoo.scratch.transformer import DecoderOnlyTransformer, build_model

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


@pytest.fixture
def model():
    torch.manual_seed(0)
    return Transformer(TINY).eval()


def _batch():
    src = torch.tensor([[5, 6, 7, 8, 9], [3, 4, 5, 0, 0]])  # second sentence padded
    tgt_in = torch.tensor([[1, 5, 6, 7], [1, 3, 4, 0]])
    return src, tgt_in


def test_default_config_is_valid_and_small():
    model = Transformer(TransformerConfig())
    assert 50_000 < model.num_parameters() < 2_000_000


def test_logits_and_attention_shapes(model):
    src, tgt_in = _batch()
    out = model(src, tgt_in, return_attention=True)
    assert out.logits.shape == (2, 4, 11)
    att = out.attentions
    assert [a.shape for a in att["encoder_self"]] == [(2, 2, 5, 5)] * 2
    assert [a.shape for a in att["decoder_self"]] == [(2, 2, 4, 4)] * 2
    assert [a.shape for a in att["cross"]] == [(2, 2, 4, 5)] * 2
    torch.testing.assert_close(out.probabilities().sum(-1), torch.ones(2, 4))


def test_no_attention_returned_unless_asked(model):
    assert model(*_batch()).attentions is None


def test_no_decoder_position_attends_to_a_later_one(model):
    att = model(*_batch(), return_attention=True).attentions
    for weights in att["decoder_self"]:
        later = torch.ones(4, 4, dtype=torch.bool).triu(1)
        assert torch.all(weights[..., later] == 0)


def test_padded_keys_get_exactly_zero_weight_and_rows_sum_to_one(model):
    att = model(*_batch(), return_attention=True).attentions
    for weights in att["encoder_self"] + att["cross"]:
        assert torch.all(weights[1, :, :, 3:] == 0)
    for weights in att["decoder_self"]:
        assert torch.all(weights[1, :, :, 3] == 0)  # the padded target token
    for kind in ("encoder_self", "decoder_self", "cross"):
        for weights in att[kind]:
            torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights.sum(-1)))


def test_padding_does_not_change_the_real_tokens_logits(model):
    src = torch.tensor([[3, 4, 5]])
    tgt_in = torch.tensor([[1, 3]])
    padded_src = torch.tensor([[3, 4, 5, 0, 0, 0]])
    torch.testing.assert_close(model(src, tgt_in).logits, model(padded_src, tgt_in).logits, atol=1e-5, rtol=1e-5)


def test_later_target_tokens_do_not_change_earlier_logits(model):
    src, _ = _batch()
    a = model(src, torch.tensor([[1, 5, 6, 7], [1, 3, 4, 2]])).logits
    b = model(src, torch.tensor([[1, 5, 9, 9], [1, 3, 8, 8]])).logits
    torch.testing.assert_close(a[:, :2], b[:, :2])


def test_explicit_and_fused_paths_give_the_same_logits(model):
    src, tgt_in = _batch()
    torch.testing.assert_close(model(src, tgt_in).logits, model(src, tgt_in, return_attention=True).logits)


def test_cached_decoding_equals_full_decoding(model):
    src, _ = _batch()
    tgt_in = torch.tensor([[1, 5, 6, 7], [1, 3, 4, 2]])
    encoded = model.encode(src)
    full = model.decode(tgt_in, encoded).logits
    cache = model.new_cache()
    steps = [model.decode(tgt_in[:, t : t + 1], encoded, cache=cache).logits for t in range(4)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache.length == 4


def test_positional_encoding_follows_the_paper():
    pe = sinusoidal_encoding(50, 8)
    pos, i = 7, 1
    assert pe[pos, 2 * i].item() == pytest.approx(torch.sin(torch.tensor(pos / 10000 ** (2 * i / 8))).item(), abs=1e-6)
    assert pe[pos, 2 * i + 1].item() == pytest.approx(
        torch.cos(torch.tensor(pos / 10000 ** (2 * i / 8))).item(), abs=1e-6
    )
    assert torch.all(pe[0, 0::2] == 0) and torch.all(pe[0, 1::2] == 1)


def test_loss_falls_on_a_fixed_batch():
    torch.manual_seed(0)
    model = Transformer(TINY)
    src = torch.randint(3, 11, (8, 6))
    tgt_in = torch.cat([torch.ones(8, 1, dtype=torch.long), src[:, :-1]], dim=1)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = model.loss(model(src, tgt_in).logits, src)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]


def test_loss_ignores_padding():
    torch.manual_seed(0)
    model = Transformer(TINY)
    logits = torch.randn(1, 3, 11)
    assert model.loss(logits, torch.tensor([[4, 5, 0]])).item() == pytest.approx(
        model.loss(logits[:, :2], torch.tensor([[4, 5]])).item()
    )


@pytest.mark.parametrize("tie", [False, True])
def test_save_load_round_trip_gives_identical_logits(tmp_path, tie):
    torch.manual_seed(0)
    model = Transformer(TransformerConfig(**{**TINY.__dict__, "tie_embeddings": tie})).eval()
    model.save(tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.json", "model.safetensors"]
    loaded = Transformer.load(tmp_path / "run").eval()
    assert loaded.cfg == model.cfg
    src, tgt_in = _batch()
    assert torch.equal(model(src, tgt_in).logits, loaded(src, tgt_in).logits)
    if tie:
        assert loaded.generator.weight is loaded.tgt_embed.lut.weight


def test_shared_embeddings_are_one_matrix_three_ways_and_survive_save_and_load(tmp_path):
    torch.manual_seed(0)
    config = TransformerConfig(**{**TINY.__dict__, "tgt_vocab_size": 13, "share_embeddings": True})
    model = Transformer(config).eval()
    assert model.src_embed.lut.weight is model.tgt_embed.lut.weight is model.generator.weight
    with torch.no_grad():  # a training step on one name moves all three
        model.src_embed.lut.weight[4] += 1.0
    model.save(tmp_path / "run")
    loaded = Transformer.load(tmp_path / "run").eval()
    assert loaded.cfg == config
    assert loaded.src_embed.lut.weight is loaded.tgt_embed.lut.weight is loaded.generator.weight
    assert torch.equal(loaded.generator.weight, model.src_embed.lut.weight)
    src, tgt_in = _batch()
    assert torch.equal(model(src, tgt_in).logits, loaded(src, tgt_in).logits)


def test_sharing_embeddings_saves_the_shared_matrix_once_under_the_source_name(tmp_path):
    from safetensors import safe_open

    config = TransformerConfig(**{**TINY.__dict__, "tgt_vocab_size": 13, "share_embeddings": True})
    Transformer(config).save(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        names = set(f.keys())
    assert "src_embed.lut.weight" in names
    assert not names & {"tgt_embed.lut.weight", "generator.weight"}


def test_sharing_embeddings_between_different_vocabularies_is_refused_with_the_two_sizes():
    with pytest.raises(ValueError, match="src_vocab_size=13 and tgt_vocab_size=11.*share_embeddings=False"):
        TransformerConfig(**{**TINY.__dict__, "share_embeddings": True})


def test_a_config_saved_before_share_embeddings_existed_still_loads(tmp_path, model):
    model.save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["share_embeddings"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert Transformer.load(tmp_path).cfg == model.cfg


def test_loading_mismatched_weights_names_the_tensor_and_both_shapes(tmp_path, model):
    model.save(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["d_ff"] = 64
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"encoder\.layers\.0\.feed_forward\.linear1\.weight.*\(32, 16\).*\(64, 16\)"):
        Transformer.load(tmp_path)


def test_loading_a_corrupted_weights_file_is_a_clear_error(tmp_path, model):
    model.save(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        Transformer.load(tmp_path)


def test_failed_save_keeps_the_previous_file(tmp_path, model, monkeypatch):
    model.save(tmp_path)
    before = (tmp_path / "model.safetensors").read_bytes()

    def broken_replace(*args):
        raise OSError("disk full")

    monkeypatch.setattr("model_zoo.utils.os.replace", broken_replace)
    with pytest.raises(OSError):
        model.save(tmp_path)
    assert (tmp_path / "model.safetensors").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(d_model=100, n_heads=3), "d_model=100 is not divisible by n_heads=3"),
        (dict(d_model=0), "d_model=0 must be a positive whole number"),
        (dict(n_encoder_layers=-1), r"n_encoder_layers=-1 must be a whole number, 0 or more \(0: a decoder-only"),
        (dict(n_decoder_layers=0), "n_decoder_layers=0 must be at least 1"),
        (dict(n_encoder_layers=0, share_embeddings=True), "decoder-only model .* use tie_embeddings=True"),
        (dict(dropout=1.5), r"dropout=1.5 must be in \[0, 1\)"),
        (dict(activation="tanh"), "activation='tanh' is not one of"),
        (dict(pad_id=99), "pad_id=99 must be a token id below"),
        (dict(n_encoder_layers=200), "n_encoder_layers=200 is over this server's limit of 24"),
        (dict(n_decoder_layers=200), "n_decoder_layers=200 is over this server's limit of 24"),
        (dict(d_model=65_536), "d_model=65,536 is over this server's limit of 4,096"),
        (dict(d_ff=10**6), "d_ff=1,000,000 is over this server's limit of 16,384"),
        (dict(src_vocab_size=10**6), "src_vocab_size=1,000,000 is over this server's limit of 100,000"),
        (dict(max_len=10**5), "max_len=100,000 is over this server's limit of 8,192"),
        (
            dict(d_model=1024, d_ff=8192, n_encoder_layers=12, n_decoder_layers=12, src_vocab_size=50_000),
            "would have 605M parameters, over this server's limit of 300M",
        ),
    ],
)
def test_bad_config_explains_itself(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TransformerConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        dict(tie_embeddings=True),
        dict(share_embeddings=True),
        dict(share_embeddings=True, tie_embeddings=True),
        dict(n_encoder_layers=0),
        dict(n_encoder_layers=0, tie_embeddings=True, norm_first=True),
        dict(norm_first=True, n_encoder_layers=3, n_decoder_layers=1, d_model=32, d_ff=50, src_vocab_size=7),
    ],
)
def test_parameter_count_from_the_config_matches_the_built_model(kwargs):
    config = TransformerConfig(**kwargs)
    assert config.n_parameters() == build_model(config).num_parameters()


def test_the_papers_big_model_is_within_the_limits():
    big = TransformerConfig(  # Table 3, "big": 37,000 shared BPE tokens (one table each side here)
        src_vocab_size=37_000,
        tgt_vocab_size=37_000,
        d_model=1024,
        n_heads=16,
        d_ff=4096,
        tie_embeddings=True,
        n_encoder_layers=6,
        n_decoder_layers=6,
    )
    assert 200e6 < big.n_parameters() < 300e6


@pytest.mark.parametrize(
    ("src", "message"),
    [
        (torch.tensor([3, 4, 5]), r"src must have shape \(batch, length\), got \(3,\)"),
        (torch.full((1, 21), 3), "src has length 21 but the model's max_len is 20"),
        (torch.tensor([[3, 13]]), r"src holds token id 13, outside the vocabulary \[0, 12\]"),
        (torch.tensor([[3, -1]]), "src holds token id -1"),
        (torch.tensor([[3.0, 4.0]]), "src must hold integer token ids"),
        (torch.zeros(1, 0, dtype=torch.long), "src is empty"),
    ],
)
def test_wrong_input_names_the_tensor_and_what_was_expected(model, src, message):
    with pytest.raises(ValueError, match=message):
        model(src, torch.tensor([[1, 3]]))


def test_wrong_mask_shape_is_a_clear_error(model):
    src, tgt_in = _batch()
    with pytest.raises(ValueError, match=r"src_mask must be a boolean tensor of shape \(2, 5\).*\(2, 4\)"):
        model(src, tgt_in, src_mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="tgt_mask must be a boolean tensor"):
        model(src, tgt_in, tgt_mask=torch.ones(2, 4))


def test_target_token_outside_vocabulary_is_named(model):
    with pytest.raises(ValueError, match="tgt_in holds token id 11"):
        model(torch.tensor([[3, 4]]), torch.tensor([[1, 11]]))


# -- the decoder-only form (GPT's): the same blocks, the cross-attention absent -------------------------
GPT_TINY = TransformerConfig(
    src_vocab_size=11, tgt_vocab_size=11, d_model=16, n_heads=2, n_encoder_layers=0, n_decoder_layers=2, d_ff=32
)


def test_decoder_only_model_is_the_decoder_blocks_without_cross_attention():
    model = build_model(GPT_TINY)
    assert isinstance(model, DecoderOnlyTransformer)
    assert not hasattr(model, "encoder") and not hasattr(model, "src_embed")
    for block in model.decoder.layers:
        assert type(block) is DecoderBlock and block.cross_attn is None and block.norm2 is None
    assert not any("cross_attn" in name for name, _ in model.named_parameters())


def test_decoder_only_logits_at_a_position_ignore_the_tokens_after_it():
    torch.manual_seed(0)
    model = DecoderOnlyTransformer(GPT_TINY).eval()
    tokens = torch.tensor([[3, 4, 5, 6, 7]])
    changed = torch.tensor([[3, 4, 5, 9, 10]])
    with torch.no_grad():
        a, b = model(tokens).logits, model(changed).logits
    torch.testing.assert_close(a[:, :3], b[:, :3])
    assert not torch.allclose(a[:, 3:], b[:, 3:])


def test_decoder_only_kv_cache_gives_the_logits_of_the_whole_prefix():
    torch.manual_seed(0)
    model = DecoderOnlyTransformer(GPT_TINY).eval()
    tokens = torch.tensor([[3, 4, 5, 6, 7], [8, 2, 9, 1, 4]])
    cache = model.new_cache()
    with torch.no_grad():
        full = model(tokens).logits
        steps = [model(tokens[:, i : i + 1], cache=cache).logits for i in range(tokens.size(1))]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-5)
    assert cache.length == 5


def test_decoder_only_attention_is_causal_self_attention_only():
    model = DecoderOnlyTransformer(GPT_TINY).eval()
    out = model(torch.tensor([[3, 4, 5, 0]]), return_attention=True)  # the last token is padding
    assert list(out.attentions) == ["decoder_self"] and len(out.attentions["decoder_self"]) == 2
    weights = out.attentions["decoder_self"][0]  # (B, H, T, T)
    assert weights.shape == (1, 2, 4, 4)
    assert torch.all(weights[..., :3, :].triu(1) == 0) and torch.all(weights[..., 3] == 0)


def test_decoder_only_model_saves_and_loads_as_itself(tmp_path):
    torch.manual_seed(0)
    model = DecoderOnlyTransformer(TransformerConfig(**{**GPT_TINY.__dict__, "tie_embeddings": True})).eval()
    model.save(tmp_path)
    loaded = Transformer.load(tmp_path).eval()
    assert isinstance(loaded, DecoderOnlyTransformer) and loaded.cfg == model.cfg
    assert loaded.generator.weight is loaded.tgt_embed.lut.weight
    tokens = torch.tensor([[3, 4, 5]])
    assert torch.equal(model(tokens).logits, loaded(tokens).logits)


def test_each_class_refuses_the_other_familys_config_and_names_the_right_one():
    with pytest.raises(ValueError, match=r"decoder-only model: build it with DecoderOnlyTransformer\(cfg\)"):
        Transformer(GPT_TINY)
    with pytest.raises(ValueError, match=r"needs n_encoder_layers=0, got 2"):
        DecoderOnlyTransformer(TransformerConfig())
    with pytest.raises(ValueError, match="has no encoder"):
        DecoderOnlyTransformer(GPT_TINY).encode(torch.tensor([[3, 4]]))


def test_large_builds_take_turns_and_small_ones_never_wait():
    """Build makes whatever its student asks, up to 300 M parameters (1.2 GB): a large one waits
    for the one before it, so many students at once hold one large model's memory, not many."""
    import threading

    from model_zoo.scratch.transformer import LARGE_BUILD_PARAMETERS, large_build

    large = TransformerConfig(d_model=512, d_ff=4096, n_encoder_layers=4, n_decoder_layers=4)
    small = TransformerConfig()
    assert large.n_parameters() >= LARGE_BUILD_PARAMETERS > small.n_parameters()
    inside, leave, second_in = threading.Event(), threading.Event(), threading.Event()

    def first():
        with large_build(large):
            inside.set()
            leave.wait(30)

    def second():
        with large_build(large):
            second_in.set()

    a = threading.Thread(target=first)
    a.start()
    assert inside.wait(30)
    b = threading.Thread(target=second)
    b.start()
    assert not second_in.wait(0.3)  # still waiting for the first
    with large_build(small):  # a small model goes ahead meanwhile
        pass
    leave.set()
    assert second_in.wait(30)
    a.join(30)
    b.join(30)


def test_counts_on_the_meta_device_equal_the_real_models():
    from model_zoo.views.weights import parameter_counts

    cfg = TransformerConfig(tie_embeddings=True)
    with torch.device("meta"):
        counted = Transformer(cfg)
    real = Transformer(cfg)
    for level in ("group", "module"):
        assert parameter_counts(counted, level).equals(parameter_counts(real, level))
    assert counted.num_parameters() == real.num_parameters() == cfg.n_parameters()


def test_the_feed_forward_concepts_shares_are_the_models():
    """The concept box says the feed-forward holds two thirds of an encoder block's parameters and
    half of a decoder block's at d_ff = 4 D (it once said 'most of the parameters')."""
    from model_zoo.content import concept

    model = Transformer(TransformerConfig(d_model=64, d_ff=256))

    def share(block) -> float:
        ff = sum(p.numel() for p in block.feed_forward.parameters())
        return ff / sum(p.numel() for p in block.parameters())

    assert share(model.encoder.layers[0]) == pytest.approx(2 / 3, abs=0.01)
    assert share(model.decoder.layers[0]) == pytest.approx(1 / 2, abs=0.01)
    words = concept("feed_forward").words
    assert "two thirds of an encoder block's parameters and half" in words.replace("\n", " ")


def test_every_dropout_acts_in_training_and_none_is_called_in_evaluation():
    """Dropout sites: the positional encoding (source, target), each encoder block's two and its
    feed-forward's one, each decoder block's three and its feed-forward's one. In evaluation they are
    the identity, skipped (a decoding step would make ten calls that return their input)."""
    cfg = dataclasses.replace(TINY, dropout=0.5)
    torch.manual_seed(0)
    model = Transformer(cfg)
    calls = []
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.register_forward_hook(lambda m, i, o: calls.append(m))
    src, tgt_in = _batch()
    model.train()
    torch.manual_seed(1)
    first = model(src, tgt_in).logits
    assert len(calls) == 2 + 2 * (2 + 1) + 2 * (3 + 1)
    torch.manual_seed(2)
    assert not torch.allclose(first, model(src, tgt_in).logits)  # different units dropped
    calls.clear()
    model.eval()
    evaluated = model(src, tgt_in).logits
    assert calls == []
    quiet = Transformer(dataclasses.replace(TINY, dropout=0.0)).eval()  # the same weights, no dropout
    quiet.load_state_dict(model.state_dict())
    torch.testing.assert_close(evaluated, quiet(src, tgt_in).logits)
