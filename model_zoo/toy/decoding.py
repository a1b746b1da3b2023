"""Decoding the scratch Transformer: greedy, beam search and sampling with a key/value cache,
and a step API for the app's step-through view. For a decoder-only language model: `generate`
(one token at a time with the cache) and the sampling filters — temperature, top-k, top-p — with
`next_token_distribution` to show what they cut."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor

from model_zoo.decode_step import DecodeStep
from model_zoo.scratch.transformer import DecoderCache, EncoderOutput
from model_zoo.toy.tasks import BOS_ID, EOS_ID, Vocab
from model_zoo.utils import eval_mode, torch_threads, without_onednn


# -- shared helpers -----------------------------------------------------------------------------
def default_max_new_tokens(model, source_length: int) -> int:
    """Length cap: twice the source plus ten, never past the model's positional encoding."""
    return min(model.cfg.max_len, 2 * source_length + 10)


def _check_source(model, src: Tensor, src_mask: Tensor | None) -> tuple[Tensor, Tensor]:
    if not isinstance(src, Tensor):
        raise ValueError(f"src must be a torch.Tensor of token ids, got {type(src).__name__}.")
    if src.dim() == 1:
        src = src[None]
        src_mask = None if src_mask is None else src_mask[None]
    if src.numel() == 0:
        raise ValueError("The source is empty: decoding needs at least one source token.")
    src = src.to(model.device)
    src_mask = (src != model.cfg.pad_id) if src_mask is None else src_mask.to(model.device)
    return src, src_mask


def _next_logits(model, tokens: Tensor, encoded: EncoderOutput, cache: DecoderCache | None) -> Tensor:
    """Logits (B, V) of the token after `tokens` (B, t). With a cache only the last token is fed;
    without one the whole prefix is recomputed (what the cache saves)."""
    if cache is not None:
        new = tokens[:, cache.length :]  # (B, t - cached)
        return model.decode(new, encoded, cache=cache).logits[:, -1]
    return model.decode(tokens, encoded, tgt_mask=torch.ones_like(tokens, dtype=torch.bool)).logits[:, -1]


def _filter_top_k(logits: Tensor, top_k: int | None) -> Tensor:
    if top_k is None or top_k >= logits.size(-1):
        return logits
    kth = logits.topk(top_k, dim=-1).values[..., -1:]  # (B, 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def _check_sampling(temperature: float, top_k: int | None) -> None:
    if not temperature > 0:
        raise ValueError(
            f"temperature={temperature} must be above 0 (use greedy decoding for 'always the most likely')."
        )
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k={top_k!r} must be a whole number of at least 1, or None for no cut.")


def _generate(model, src, src_mask, choose, max_new_tokens, use_cache, bos_id, eos_id) -> Tensor:
    src, src_mask = _check_source(model, src, src_mask)
    B = src.size(0)
    n_new = max_new_tokens or default_max_new_tokens(model, src.size(1))
    with eval_mode(model):
        encoded = model.encode(src, src_mask)
        cache = model.new_cache() if use_cache else None
        tokens = torch.full((B, 1), bos_id, dtype=torch.long, device=src.device)  # (B, 1)
        finished = torch.zeros(B, dtype=torch.bool, device=src.device)
        for _ in range(n_new):
            next_token = choose(_next_logits(model, tokens, encoded, cache))  # (B,)
            next_token = next_token.masked_fill(finished, model.cfg.pad_id)  # finished rows: padding
            tokens = torch.cat([tokens, next_token[:, None]], dim=1)
            finished |= next_token == eos_id
            if bool(finished.all()):
                break
    return tokens[:, 1:]  # (B, N): <bos> dropped, <eos> kept, padding after it


# -- the three strategies, on tensors of token ids --------------------------------------------------
def greedy_decode(
    model,
    src: Tensor,
    src_mask: Tensor | None = None,
    *,
    max_new_tokens: int | None = None,
    use_cache: bool = True,
    bos_id: int = BOS_ID,
    eos_id: int = EOS_ID,
) -> Tensor:
    """Always the most likely next token. src (B, S) -> generated ids (B, N) ending in <eos> (then
    padding) or cut at `max_new_tokens`. `use_cache=False` recomputes the whole prefix each step."""
    return _generate(model, src, src_mask, lambda logits: logits.argmax(-1), max_new_tokens, use_cache, bos_id, eos_id)


def sample_decode(
    model,
    src: Tensor,
    src_mask: Tensor | None = None,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    max_new_tokens: int | None = None,
    use_cache: bool = True,
    bos_id: int = BOS_ID,
    eos_id: int = EOS_ID,
) -> Tensor:
    """Draw each token from softmax(logits / temperature), among the `top_k` most likely only.
    Low temperatures approach greedy; high ones flatten the distribution. Seeded: `seed` or a
    `generator` on the model's device."""
    _check_sampling(temperature, top_k)
    if generator is None:
        generator = torch.Generator(device=model.device)
        generator.manual_seed(0 if seed is None else seed)

    def choose(logits: Tensor) -> Tensor:
        probs = _filter_top_k(logits / temperature, top_k).softmax(-1)  # (B, V)
        return torch.multinomial(probs, 1, generator=generator)[:, 0]

    return _generate(model, src, src_mask, choose, max_new_tokens, use_cache, bos_id, eos_id)


@dataclass
class Hypothesis:
    """One finished (or cut) beam: its tokens, total log-probability and length-normalised score."""

    token_ids: list[int]  # generated ids, <eos> included when it ended with one
    log_prob: float
    score: float


def length_normalisation(length: int, alpha: float) -> float:
    """GNMT's length penalty ((5 + length) / 6) ** alpha (Wu et al. 2016): alpha 0 = raw log-prob,
    larger alpha favours longer outputs."""
    return ((5 + length) / 6) ** alpha


def beam_search(
    model,
    src: Tensor,
    src_mask: Tensor | None = None,
    *,
    beam_width: int = 4,
    length_penalty: float = 0.6,
    max_new_tokens: int | None = None,
    use_cache: bool = True,
    bos_id: int = BOS_ID,
    eos_id: int = EOS_ID,
    tree: BeamTree | None = None,
) -> list[Hypothesis]:
    """Keep the `beam_width` most likely prefixes at each step; one source sentence, src (S,) or
    (1, S). Returns at most `beam_width` hypotheses, best first (score = log-prob / length
    normalisation).
    Stops once `beam_width` hypotheses ended with <eos>, or at the length cap. Pass an empty
    `BeamTree` as `tree` to have every candidate recorded (`beam_search_tree` does)."""
    if not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"beam_width={beam_width!r} must be a whole number of at least 1.")
    if length_penalty < 0:
        raise ValueError(f"length_penalty={length_penalty} must be 0 or more.")
    src, src_mask = _check_source(model, src, src_mask)
    if src.size(0) != 1:
        raise ValueError(f"beam_search decodes one source at a time, got a batch of {src.size(0)}.")
    n_new = max_new_tokens or default_max_new_tokens(model, src.size(1))
    device = src.device

    def finish(ids: list[int], log_prob: float) -> Hypothesis:
        return Hypothesis(ids, log_prob, log_prob / length_normalisation(len(ids), length_penalty))

    def record(parent: int, step: int, token: int, log_prob: float, rank: int, status: str) -> int:
        if tree is None:
            return -1
        length = step  # tokens generated, this one included
        normalised = log_prob / length_normalisation(length, length_penalty)
        tree.nodes.append(BeamNode(len(tree.nodes), parent, step, token, log_prob, normalised, rank, status))
        return len(tree.nodes) - 1

    if tree is not None:
        tree.nodes[:] = [BeamNode(0, None, 0, bos_id, 0.0, 0.0, 0, "kept")]
        tree.beam_width, tree.length_penalty = beam_width, length_penalty
    alive_nodes = [0]  # the tree's node of each alive beam
    finished_nodes: list[int] = []  # the tree's node of each finished hypothesis, in `finished` order

    with eval_mode(model):
        encoded = model.encode(src, src_mask)  # memory (1, S, D)
        cache = model.new_cache() if use_cache else None
        tokens = torch.full((1, 1), bos_id, dtype=torch.long, device=device)  # (K, t): alive beams
        scores = torch.zeros(1, device=device)  # (K,) log-probabilities of the alive beams
        finished: list[Hypothesis] = []
        for _ in range(n_new):
            K = tokens.size(0)
            beam_encoded = EncoderOutput(encoded.memory.expand(K, -1, -1), encoded.src_mask.expand(K, -1))
            log_probs = _next_logits(model, tokens, beam_encoded, cache).log_softmax(-1)  # (K, V)
            V = log_probs.size(-1)
            # 1) Every alive beam extended by every token; the 2K best can refill K beams even if
            #    K of them end with <eos>.
            total = (scores[:, None] + log_probs).view(-1)  # (K * V,)
            top_scores, top_index = total.topk(min(2 * beam_width, total.numel()))
            keep_beam, keep_token, keep_score, keep_nodes = [], [], [], []
            step = tokens.size(1)  # tokens generated once this step's is added
            for rank, (score, index) in enumerate(zip(top_scores.tolist(), top_index.tolist(), strict=True)):
                beam, token = divmod(index, V)
                full = len(keep_beam) == beam_width  # the candidates after this are pruned
                if token == eos_id and rank < beam_width and not full:
                    # 2) An <eos> among the best `beam_width` candidates ends a hypothesis.
                    finished.append(finish([*tokens[beam, 1:].tolist(), eos_id], score))
                    finished_nodes.append(record(alive_nodes[beam], step, token, score, rank, "finished"))
                elif token != eos_id and not full:
                    keep_beam.append(beam)
                    keep_token.append(token)
                    keep_score.append(score)
                    keep_nodes.append(record(alive_nodes[beam], step, token, score, rank, "kept"))
                else:
                    record(alive_nodes[beam], step, token, score, rank, "pruned")
            if len(finished) >= beam_width:
                break
            alive_nodes = keep_nodes
            # 3) The survivors, with their caches moved along.
            index = torch.tensor(keep_beam, device=device)
            if cache is not None:
                cache.reorder(index)
            tokens = torch.cat([tokens[index], torch.tensor(keep_token, device=device)[:, None]], dim=1)
            scores = torch.tensor(keep_score, device=device)
        else:  # the length cap: the alive beams count as hypotheses too
            finished += [finish(row[1:].tolist(), s) for row, s in zip(tokens, scores.tolist(), strict=True)]
            finished_nodes += alive_nodes
            if tree is not None:
                for node in alive_nodes:
                    tree.nodes[node].status = "cut"
    order = sorted(range(len(finished)), key=lambda i: finished[i].score, reverse=True)[:beam_width]
    if tree is not None:
        tree.returned = [finished_nodes[i] for i in order]
    return [finished[i] for i in order]


@dataclass
class BeamNode:
    """One candidate of a beam search: a prefix extended by one token, and what became of it."""

    id: int
    parent: int | None  # None for the root (<bos>)
    step: int  # tokens generated, this one included (0 for the root)
    token_id: int
    log_prob: float  # the whole prefix's log-probability
    score: float  # log_prob / length normalisation: what the finished hypotheses are ranked by
    rank: int  # its place among this step's candidates, by log-probability (0 = best)
    status: str  # "kept" (an alive beam), "finished" (ended with <eos>), "pruned", "cut" (the length cap)


@dataclass
class BeamTree:
    """Every candidate a beam search looked at (`beam_search(..., tree=BeamTree())`): the best
    2 × beam_width extensions of the alive beams at each step, kept, finished or pruned."""

    nodes: list[BeamNode] = field(default_factory=list)
    returned: list[int] = field(default_factory=list)  # node of each returned hypothesis, best first
    beam_width: int = 0
    length_penalty: float = 0.0

    def path(self, node: int) -> list[int]:
        """The token ids from the root to `node` (<bos> left out)."""
        ids = []
        while node is not None and self.nodes[node].parent is not None:
            ids.append(self.nodes[node].token_id)
            node = self.nodes[node].parent
        return ids[::-1]


def beam_search_tree(model, src: Tensor, **kwargs) -> tuple[list[Hypothesis], BeamTree]:
    """`beam_search` (same arguments) and the tree of every candidate it kept, finished or pruned."""
    tree = BeamTree()
    return beam_search(model, src, tree=tree, **kwargs), tree


# -- the logit lens: what each decoder block would say -------------------------------------------
@contextmanager
def _decoder_block_outputs(model) -> Iterator[list[Tensor]]:
    """Collect each decoder block's output (B, t, D) during the forward passes inside the block."""
    outputs: list[Tensor] = []
    handles = [
        layer.register_forward_hook(lambda module, inputs, output: outputs.append(output[0]))
        for layer in model.decoder.layers
    ]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def _read_through_output_layer(model, hidden: Tensor) -> Tensor:
    """A decoder block's output (..., D) read as next-token logits (..., V): the final norm, then the
    output layer, as the last block's output is."""
    return model.generator(model.decoder.norm(hidden))


# -- text in, text out ----------------------------------------------------------------------------
STRATEGIES = ("greedy", "beam", "sample")


@dataclass
class DecodeResult:
    """A decoded sentence and how it came about."""

    text: str
    tokens: list[str]  # generated tokens, <eos> not included
    token_ids: list[int]
    source_tokens: list[str]  # the source as the model saw it (unknown words shown as <unk>)
    unknown_words: list[str]  # words of the input that are not in the vocabulary
    finished: bool  # True when the model chose <eos>; False when the length cap cut it
    strategy: str
    log_prob: float | None = None  # beam search: the total log-probability
    candidates: list[tuple[str, float]] = field(default_factory=list)  # beam search: (text, score), best first


def encode_source(vocab: Vocab, text: str | list[str]) -> tuple[list[int], list[str]]:
    """Text -> source ids and the unknown words. Empty text is a ValueError."""
    if isinstance(text, str) and not text.strip():
        raise ValueError("The input is empty: type a sentence to decode (for a copy run, symbols such as '3 5 7 9').")
    return vocab.encode(text)


def decode_text(
    model,
    vocab: Vocab,
    text: str,
    strategy: str = "greedy",
    *,
    beam_width: int = 4,
    length_penalty: float = 0.6,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int | None = None,
    max_new_tokens: int | None = None,
    use_cache: bool = True,
) -> DecodeResult:
    """Decode one input sentence with "greedy", "beam" or "sample"; the app and the CLI call this."""
    if model.cfg.decoder_only:
        raise ValueError(
            "This run is a language model (decoder-only): it continues a prompt instead of translating a source. "
            'Generate with it on Step-through, or with `python -m model_zoo decode RUN "prompt"`.'
        )
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy={strategy!r} is not one of {STRATEGIES}.")
    ids, unknown = encode_source(vocab, text)
    src = torch.tensor([ids], dtype=torch.long)
    common = dict(max_new_tokens=max_new_tokens, use_cache=use_cache)
    log_prob, candidates = None, []
    if strategy == "beam":
        hypotheses = beam_search(model, src, beam_width=beam_width, length_penalty=length_penalty, **common)
        out = hypotheses[0].token_ids
        log_prob = hypotheses[0].log_prob
        candidates = [(vocab.to_text(h.token_ids), h.score) for h in hypotheses]
    elif strategy == "sample":
        out = sample_decode(model, src, temperature=temperature, top_k=top_k, seed=seed, **common)[0].tolist()
    else:
        out = greedy_decode(model, src, **common)[0].tolist()
    finished = EOS_ID in out
    out = out[: out.index(EOS_ID)] if finished else out
    tokens = vocab.decode(out)
    return DecodeResult(
        text=" ".join(tokens),
        tokens=tokens,
        token_ids=out,
        source_tokens=[vocab.itos[i] for i in ids],
        unknown_words=unknown,
        finished=finished,
        strategy=strategy,
        log_prob=log_prob,
        candidates=candidates,
    )


# -- step-through decoding for the app -------------------------------------------------------------
class DecodingSession:
    """Decode one sentence a token at a time, showing each step's choice.

    `step()` returns a `DecodeStep`: the top-k next-token probabilities, the token chosen, and this
    step's decoder self-attention and cross-attention rows. `back()` undoes a step, `reset()` starts
    over; sampling is seeded and `back()` restores the random state, so stepping again repeats.
    """

    def __init__(
        self,
        model,
        vocab: Vocab,
        source_text: str,
        strategy: str = "greedy",
        *,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int = 0,
        show_top: int = 5,
        max_new_tokens: int | None = None,
    ):
        if strategy not in ("greedy", "sample"):
            raise ValueError(f"strategy={strategy!r}: step-through decoding is 'greedy' or 'sample'.")
        _check_sampling(temperature, top_k)
        if not isinstance(show_top, int) or show_top < 1:
            raise ValueError(f"show_top={show_top!r} must be a whole number of at least 1.")
        self.model, self.vocab, self.strategy = model, vocab, strategy
        self.temperature, self.top_k, self.seed, self.show_top = temperature, top_k, seed, show_top
        self.top_p: float | None = None
        ids, self.unknown_words = encode_source(vocab, source_text)
        self.source_ids = ids
        self.source_tokens = [vocab.itos[i] for i in ids]
        self.max_new_tokens = max_new_tokens or default_max_new_tokens(model, len(ids))
        with eval_mode(model):
            src = torch.tensor([ids], dtype=torch.long, device=model.device)
            self._encoded = model.encode(src)
        self.reset()

    def reset(self) -> None:
        """Back to the start: nothing generated yet."""
        self.steps: list[DecodeStep] = []
        self._cache = self.model.new_cache()
        self._generator = torch.Generator(device=self.model.device)
        self._generator.manual_seed(self.seed)
        self._rng_states: list[Tensor] = []  # the generator's state before each step

    @property
    def token_ids(self) -> list[int]:
        return [s.token_id for s in self.steps]

    @property
    def tokens(self) -> list[str]:
        """The tokens generated so far (<eos> included once chosen)."""
        return [s.token for s in self.steps]

    @property
    def text(self) -> str:
        return self.vocab.to_text(self.token_ids)

    @property
    def finished(self) -> bool:
        return bool(self.steps) and self.steps[-1].finished

    def step(self) -> DecodeStep:
        """Choose the next token. Raises ValueError once decoding has finished (call `reset`)."""
        if self.finished:
            raise ValueError("Decoding has finished (<eos> or the length cap): reset() to start again.")
        self._rng_states.append(self._generator.get_state())
        fed = [BOS_ID, *self.token_ids]
        new = torch.tensor([fed[self._cache.length :]], dtype=torch.long, device=self.model.device)
        with eval_mode(self.model), _decoder_block_outputs(self.model) as block_outputs:
            out = self.model.decode(new, self._encoded, return_attention=True, cache=self._cache)
            lens = _read_through_output_layer(self.model, torch.stack([h[0, -1] for h in block_outputs]))  # (L, V)
        lens_top = lens.softmax(-1).topk(min(self.show_top, lens.size(-1)))
        if self.strategy == "sample":
            probs = filter_logits(out.logits[0, -1], self.temperature, self.top_k, self.top_p).softmax(-1)  # (V,)
            token_id = int(torch.multinomial(probs, 1, generator=self._generator))
        else:
            probs = out.logits[0, -1].softmax(-1)  # (V,)
            token_id = int(probs.argmax())
        top = probs.topk(min(self.show_top, probs.numel()))
        position = len(self.steps)
        step = DecodeStep(
            position=position,
            token_id=token_id,
            token=self.vocab.itos[token_id],
            top_tokens=[self.vocab.itos[i] for i in top.indices.tolist()],
            top_probs=top.values.tolist(),
            self_attention=torch.stack([w[0, :, -1] for w in out.attentions["decoder_self"]]).cpu(),  # (L, H, t+1)
            cross_attention=torch.stack([w[0, :, -1] for w in out.attentions["cross"]]).cpu(),  # (L, H, S)
            source_tokens=self.source_tokens,
            finished=token_id == EOS_ID or position + 1 >= self.max_new_tokens,
            lens_tokens=[[self.vocab.itos[i] for i in row] for row in lens_top.indices.tolist()],
            lens_probs=lens_top.values.tolist(),
        )
        self.steps.append(step)
        return step

    def set_filters(self, temperature: float, top_k: int | None = None, top_p: float | None = None) -> None:
        """The sampling filters of the steps to come (`filter_logits`; temperature 0 is greedy); the
        steps taken keep theirs. For a page whose sliders move while decoding goes on."""
        _check_filters(temperature, top_k, top_p)
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p

    def back(self) -> None:
        """Undo the last step (no-op at the start)."""
        if not self.steps:
            return
        self.steps.pop()
        self._generator.set_state(self._rng_states.pop())
        # The cache cannot forget a token: rebuild it from the tokens that remain, in one pass.
        self._cache = self.model.new_cache()
        if self.steps:
            prefix = torch.tensor([[BOS_ID, *self.token_ids[:-1]]], dtype=torch.long, device=self.model.device)
            with eval_mode(self.model):
                self.model.decode(prefix, self._encoded, cache=self._cache)

    def run(self) -> list[DecodeStep]:
        """Step until the end; returns every step."""
        while not self.finished:
            self.step()
        return self.steps


# -- a language model: generate text one character at a time ----------------------------------------
# The three filters a sampler puts between the model's scores and the dice. Each takes logits (..., V)
# and returns them with the tokens it cuts set to -inf (probability 0 after the softmax).
def temperature_scale(logits: Tensor, temperature: float) -> Tensor:
    """Divide the scores by `temperature`: below 1 sharpens the distribution, above 1 flattens it.
    0 is the limit, greedy: only the most likely token keeps any probability."""
    if temperature == 0:
        best = logits.argmax(-1, keepdim=True)  # (..., 1)
        return torch.full_like(logits, float("-inf")).scatter(-1, best, 0.0)
    return logits / temperature


def top_k_filter(logits: Tensor, k: int | None) -> Tensor:
    """Keep the `k` most likely tokens, cut the rest (None: keep all). Ties at the k-th score are
    broken by position, so exactly k remain."""
    if k is None or k >= logits.size(-1):
        return logits
    keep = logits.topk(k, dim=-1).indices  # (..., k)
    cut = torch.ones_like(logits, dtype=torch.bool).scatter(-1, keep, False)
    return logits.masked_fill(cut, float("-inf"))


def top_p_filter(logits: Tensor, p: float | None) -> Tensor:
    """Nucleus sampling (Holtzman et al., 2019): keep the smallest set of most likely tokens whose
    probabilities add up to at least `p`, cut the rest (None or 1: keep all)."""
    if p is None or p >= 1:
        return logits
    probs, order = logits.softmax(-1).sort(dim=-1, descending=True)  # (..., V), most likely first
    before = probs.cumsum(-1) - probs  # the probability of the tokens ranked above each one
    cut_sorted = before >= p  # once those above reach p, this token is not needed
    cut = torch.zeros_like(cut_sorted).scatter(-1, order, cut_sorted)  # back to vocabulary order
    return logits.masked_fill(cut, float("-inf"))


def _check_filters(temperature: float, top_k: int | None, top_p: float | None) -> None:
    if not (isinstance(temperature, int | float) and temperature >= 0):
        raise ValueError(f"temperature={temperature!r} must be 0 (greedy) or more; 1 samples the model as it is.")
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1):
        raise ValueError(f"top_k={top_k!r} must be a whole number of at least 1, or None for no cut.")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p={top_p!r} must be in (0, 1], or None for no cut.")


def filter_logits(
    logits: Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> Tensor:
    """Temperature, then top-k, then top-p, as most samplers apply them. logits (..., V) -> (..., V)."""
    _check_filters(temperature, top_k, top_p)
    return top_p_filter(top_k_filter(temperature_scale(logits, temperature), top_k), top_p)


def _entropy(probs: Tensor) -> float:
    """In bits: 0 when one token is certain, log2(n) for a uniform choice among n."""
    nonzero = probs[probs > 0]
    return float(-(nonzero * nonzero.log2()).sum())


@dataclass
class NextTokenDistribution:
    """The model's next-token probabilities after a prompt, before and after the sampling filters."""

    tokens: list[str]  # the vocabulary, in id order
    before: Tensor  # (V,) softmax(logits): the model as it is
    after: Tensor  # (V,) what is sampled from: 0 where a filter cut the token
    entropy_before: float  # bits
    entropy_after: float

    @property
    def kept(self) -> Tensor:
        """(V,) True where the token survives the filters."""
        return self.after > 0


def _prompt_ids(vocab: Vocab, prompt: str | list[int]) -> list[int]:
    if isinstance(prompt, str):
        ids, unknown = vocab.encode(prompt)
        if unknown:
            raise ValueError(f"The prompt has characters the model never saw: {''.join(sorted(set(unknown)))!r}.")
        return ids
    if not prompt:
        raise ValueError("The prompt is empty: type at least one character.")
    return list(prompt)


def _context(model, context: int | None) -> int:
    """How many tokens the model reads at most: its positional encoding's length."""
    return model.cfg.max_len if context is None else min(context, model.cfg.max_len)


def next_token_distribution(
    model,
    vocab: Vocab,
    prompt: str | list[int],
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> NextTokenDistribution:
    """What a decoder-only model predicts after `prompt` (its last `max_len` tokens), before and
    after temperature, top-k and top-p: for a page that shows what the filters cut."""
    ids = _prompt_ids(vocab, prompt)[-_context(model, None) :]
    with eval_mode(model):
        logits = model(torch.tensor([ids], device=model.device)).logits[0, -1].float().cpu()  # (V,)
    before = logits.softmax(-1)
    after = filter_logits(logits, temperature, top_k, top_p).softmax(-1)
    return NextTokenDistribution(list(vocab.itos), before, after, _entropy(before), _entropy(after))


def _draw_one(probs: Tensor, generator: torch.Generator) -> int:
    """One token id drawn from `probs` (V,): argmax of p / E with E exponential, the race by which
    `torch.multinomial(probs, 1)` draws one sample (the same id from the same generator), without the
    four checks of `probs` it makes on each call, which cost it twice the draw (~7 µs a step here)."""
    return int((probs / torch.empty_like(probs).exponential_(generator=generator)).argmax())


def generate(
    model,
    prompt_ids: list[int],
    n_new: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    *,
    seed: int = 0,
    use_cache: bool = True,
    context: int | None = None,
    threads: int = 1,
) -> list[int]:
    """Continue `prompt_ids` by `n_new` tokens, one at a time, each drawn from the filtered
    next-token distribution (`filter_logits`); returns the new ids.

    With the KV cache each step feeds only the newest token. The model reads at most `context`
    tokens (default its `max_len`): when the cache is full it starts a new one from the last half of
    the text (one pass), so positions stay within what it was trained on. `use_cache=False`
    recomputes the whole window every step: the same tokens while the text fits in the window, slower.
    `threads`: the torch threads the model runs on (one suits one token a step; see below).
    """
    _check_filters(temperature, top_k, top_p)
    if not prompt_ids:
        raise ValueError("The prompt is empty: give at least one token.")
    if not isinstance(n_new, int) or n_new < 0:
        raise ValueError(f"n_new={n_new!r} must be a whole number, 0 or more.")
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise ValueError(f"threads={threads!r} must be a whole number of at least 1.")
    window = _context(model, context)
    generator = torch.Generator(device=model.device).manual_seed(seed)
    ids = list(prompt_ids)
    cache = None
    # One sequence, one token at a time: ~100 small operations a step, each too small to share out
    # between threads, or to gain from oneDNN's kernels (see `without_onednn`).
    with eval_mode(model), torch.inference_mode(), torch_threads(threads), without_onednn():
        for _ in range(n_new):
            if not use_cache:
                logits = model(torch.tensor([ids[-window:]], device=model.device)).logits[0, -1]  # (V,)
            else:
                if cache is None or cache.length >= window:  # (re)fill a cache from the recent text
                    cache = model.new_cache()
                    fed = ids[-(window // 2 if len(ids) >= window else window) :]
                else:
                    fed = ids[-1:]  # only the newest token: the keys and values before it are cached
                logits = model(torch.tensor([fed], device=model.device), cache=cache).logits[0, -1]
            probs = filter_logits(logits, temperature, top_k, top_p).softmax(-1)
            ids.append(_draw_one(probs, generator))
    return ids[len(prompt_ids) :]


def generate_text(
    model,
    vocab: Vocab,
    prompt: str,
    n_chars: int = 200,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    *,
    seed: int = 0,
) -> str:
    """`generate` on text: the prompt followed by `n_chars` new characters."""
    new = generate(model, _prompt_ids(vocab, prompt), n_chars, temperature, top_k, top_p, seed=seed)
    return prompt + vocab.to_text(new)


# -- sampling you can feel: any model's next-token distribution, its filters and twenty draws ----------
def distribution_from_logits(
    logits: Tensor,
    tokens: list[str],
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> NextTokenDistribution:
    """One next-token distribution (V,) before and after `filter_logits`, whatever model scored it:
    the scratch encoder-decoder, the decoder-only language model or a fine-tuned T5."""
    if logits.dim() != 1 or logits.numel() != len(tokens):
        raise ValueError(f"logits of shape {tuple(logits.shape)} do not score the {len(tokens)} tokens named (V,).")
    logits = logits.detach().float().cpu()
    before = logits.softmax(-1)
    after = filter_logits(logits, temperature, top_k, top_p).softmax(-1)
    return NextTokenDistribution(list(tokens), before, after, _entropy(before), _entropy(after))


def source_next_token_distribution(
    model,
    vocab: Vocab,
    source_ids: list[int],
    prefix_ids: list[int],
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> NextTokenDistribution:
    """What an encoder-decoder predicts after <bos> + `prefix_ids` given the source, before and after
    the filters: the distribution the next step of decoding draws from. The whole prefix is read
    again (no cache): one pass, for a page that redraws as the filters move."""
    if not source_ids:
        raise ValueError("The source is empty: decoding needs at least one source token.")
    with eval_mode(model):
        src = torch.tensor([source_ids], dtype=torch.long, device=model.device)  # (1, S)
        tgt_in = torch.tensor([[BOS_ID, *prefix_ids]], dtype=torch.long, device=model.device)  # (1, t+1)
        logits = model.decode(tgt_in, model.encode(src), tgt_mask=torch.ones_like(tgt_in, dtype=torch.bool)).logits
    return distribution_from_logits(logits[0, -1], list(vocab.itos), temperature, top_k, top_p)  # logits (V,)


def draw_tokens(dist: NextTokenDistribution, n: int = 20, seed: int = 0) -> list[int]:
    """`n` token ids drawn (with replacement) from what is sampled from, `dist.after`; the same
    `seed` gives the same draws. A cut token (probability 0) is never drawn."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r} must be a whole number of at least 1.")
    generator = torch.Generator().manual_seed(int(seed))
    return torch.multinomial(dist.after, n, replacement=True, generator=generator).tolist()
