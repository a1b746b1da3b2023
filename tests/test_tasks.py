"""Vocabulary and tasks: special ids, unknown words, batches with masks, a held-out split."""

import json

import pytest
import torch

from model_zoo.toy.tasks import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    UNK_ID,
    CopyTask,
    EnglishIdentityTask,
    Vocab,
    make_batch,
    make_task,
    task_from_dict,
)


def test_vocab_special_tokens_have_fixed_ids():
    vocab = Vocab(["a", "b"])
    assert vocab.itos[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert (PAD_ID, BOS_ID, EOS_ID, UNK_ID) == (0, 1, 2, 3)
    assert len(vocab) == 6 and vocab.symbols == ["a", "b"]


def test_vocab_encode_decode_round_trip_and_unknown_words_are_reported():
    vocab = Vocab(["3", "5", "7"])
    ids, unknown = vocab.encode("3 5 42 7 x")
    assert ids == [4, 5, UNK_ID, 6, UNK_ID] and unknown == ["42", "x"]
    assert vocab.decode([4, 5, EOS_ID, 6]) == ["3", "5"]  # stops at <eos>
    assert vocab.decode([BOS_ID, 4, PAD_ID]) == ["3"]


@pytest.mark.parametrize("text", ["", "   "])
def test_vocab_empty_input_is_a_clear_error(text):
    with pytest.raises(ValueError, match="empty"):
        Vocab(["a"]).encode(text)


def test_vocab_words_tokenizer_lowercases_and_splits_punctuation():
    vocab = Vocab(["the", "film", "!"], tokenizer="words")
    assert vocab.tokenize("The FILM, isn't!") == ["the", "film", ",", "isn't", "!"]


def test_vocab_saves_and_loads_as_json(tmp_path):
    vocab = Vocab(["x", "y"], tokenizer="words")
    path = vocab.save(tmp_path)
    assert json.loads(path.read_text())["tokens"][4:] == ["x", "y"]
    assert Vocab.load(tmp_path) == vocab
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.json"]  # no temp files left behind


def test_vocab_load_of_a_broken_file_names_the_file(tmp_path):
    (tmp_path / "vocab.json").write_text('{"tokens": ["a"]}')
    with pytest.raises(ValueError, match="vocab.json"):
        Vocab.load(tmp_path)


def test_make_batch_pads_and_shifts_targets():
    batch = make_batch([([4, 5, 6], [6, 5, 4]), ([7], [7])])
    assert batch.src.tolist() == [[4, 5, 6], [7, 0, 0]]
    assert batch.tgt_in.tolist() == [[BOS_ID, 6, 5, 4], [BOS_ID, 7, 0, 0]]
    assert batch.tgt_out.tolist() == [[6, 5, 4, EOS_ID], [7, EOS_ID, 0, 0]]
    assert batch.src_mask.tolist() == [[True] * 3, [True, False, False]]
    assert batch.tgt_mask.sum().item() == 6
    assert batch.targets() == [[6, 5, 4], [7]]


@pytest.mark.parametrize(
    "name, rule",
    [("copy", lambda s: s), ("reverse", lambda s: s[::-1]), ("sort", sorted)],
)
def test_toy_task_targets_follow_the_rule(name, rule):
    task = make_task(name)
    batch = task.train_batch(64, torch.Generator().manual_seed(1))
    lengths = batch.src_mask.sum(1)
    for src, n, target in zip(batch.src, lengths, batch.targets(), strict=True):
        assert target == rule(src[:n].tolist())
    assert (batch.tgt_in[:, 0] == BOS_ID).all()
    assert (batch.tgt_out.gather(1, lengths[:, None]) == EOS_ID).all()
    assert torch.equal(batch.tgt_mask, batch.tgt_out != PAD_ID)


def test_copy_task_is_the_annotated_transformers_by_default():
    task = CopyTask()
    assert task.vocab.symbols == [str(i) for i in range(1, 11)]  # 10 symbols (+ padding = 11)
    assert task.max_len == 10
    config = task.model_config(d_model=32, n_heads=2)
    assert config.src_vocab_size == config.tgt_vocab_size == len(task.vocab) == 14 and config.d_model == 32


def test_toy_batches_are_seeded():
    task = make_task("reverse")
    a = task.train_batch(8, torch.Generator().manual_seed(3))
    b = task.train_batch(8, torch.Generator().manual_seed(3))
    assert torch.equal(a.src, b.src) and torch.equal(a.tgt_out, b.tgt_out)


def test_training_batches_never_contain_long_heldout_sequences():
    task = make_task("copy", n_symbols=4, min_len=5, max_len=6, n_heldout=200)  # 4^5 = 1024 sequences
    heldout = {tuple(s) for s, _ in task.heldout_pairs()}
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        batch = task.train_batch(64, g)
        for row, n in zip(batch.src.tolist(), batch.src_mask.sum(1).tolist(), strict=True):
            assert tuple(row[:n]) not in heldout


def test_task_rebuilds_from_its_description():
    task = make_task("sort", n_symbols=5, max_len=7, seed=3)
    again = task_from_dict(task.to_dict())
    assert again.to_dict() == task.to_dict() and again.heldout_pairs() == task.heldout_pairs()


def test_bad_task_settings_are_clear_errors():
    with pytest.raises(ValueError, match="Unknown task"):
        make_task("translate")
    with pytest.raises(ValueError, match="min_len"):
        make_task("copy", min_len=5, max_len=3)
    with pytest.raises(ValueError, match="Bad settings"):
        make_task("copy", colour="red")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: make_task("copy", max_len=10**5), "max_len=100,000 is over this server's limit of 512"),
        (lambda: make_task("sort", n_symbols=10**6), "n_symbols=1,000,000 is over this server's limit of 1,000"),
        (lambda: make_task("reverse", n_heldout=10**7), "n_heldout=10,000,000 is over this server's limit of 10,000"),
        (lambda: EnglishIdentityTask(max_words=10**5), "max_words=100,000 is over this server's limit of 512"),
        (lambda: EnglishIdentityTask(n_heldout=0), "n_heldout=0 must be a whole number from 1 to 10,000"),
    ],
)
def test_settings_that_would_hang_a_shared_server_are_refused_with_the_limit(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_the_longest_allowed_toy_task_builds_a_model_config():
    task = make_task("copy", max_len=512)
    assert task.model_config().max_len == 513  # room for <bos>/<eos> on the target side


def test_english_task_reads_short_review_sentences():
    task = EnglishIdentityTask(max_words=8, vocab_size=300)
    assert len(task.vocab) == 304 and task.vocab.tokenizer == "words"
    pairs = task.heldout_pairs()
    assert 0 < len(pairs) <= 256 and all(s == t and 1 <= len(s) <= 8 for s, t in pairs)
    batch = task.train_batch(16, torch.Generator().manual_seed(0))
    assert batch.src.shape[0] == 16 and torch.equal(
        batch.src, batch.tgt_out[:, : batch.src.size(1)].masked_fill(~batch.src_mask, 0)
    )
    ids, unknown = task.vocab.encode("The movie is zorgblatt.")
    assert unknown == ["zorgblatt"] and UNK_ID in ids


def test_the_toy_task_concept_says_which_held_out_sequences_training_may_also_draw():
    """The concept box once said the held-out set *never* appears in training; the shortest
    sequences (too few to keep apart) do, and it must say so."""
    import torch

    from model_zoo.content import concept

    task = make_task("copy", n_symbols=10, min_len=1, max_len=4, n_heldout=200)
    short = {tuple(s) for s, _ in task.heldout_pairs() if len(s) <= 2}  # 10 + 100 possible: shared
    drawn = set()
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        batch = task.train_batch(64, g)
        lengths = batch.src_mask.sum(1).tolist()
        drawn |= {tuple(row[:n]) for row, n in zip(batch.src.tolist(), lengths, strict=True)}
    assert short & drawn  # training does see some held-out sequences
    assert "except the shortest" in concept("toy_data").words
