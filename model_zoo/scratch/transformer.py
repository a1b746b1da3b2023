"""The Transformer of "Attention Is All You Need" (Figure 1), written from scratch.

Shapes used in every comment and docstring of the library:
    B batch, S source length, T target length, H heads, D d_model, V vocabulary size, L layers.

Masks are boolean with True = may attend (a real token), as in
`torch.nn.functional.scaled_dot_product_attention`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from model_zoo.run_folder import CONFIG_FILE, WEIGHTS_FILE
from model_zoo.scratch.attention import padding_mask
from model_zoo.scratch.layers import (
    ACTIVATIONS,
    Decoder,
    DecoderLayerCache,
    Embeddings,
    Encoder,
    PositionalEncoding,
)
from model_zoo.utils import atomic_write_bytes, atomic_write_json, read_json

MODEL_TYPE = "workbench-scratch-transformer"

# Limits for a shared teaching server (a free Space: 2 CPUs and 16 GB for a whole class), checked when
# a config is made, before anything is built. Each is well past what a lesson needs: the paper's
# big model (d_model 1024, d_ff 4096, 6 + 6 layers, 213M parameters) fits.
MAX_LAYERS = 24  # per stack: BERT-large's depth; 200 layers would take minutes a step on a CPU
MAX_D_MODEL = 4096
MAX_D_FF = 16384
MAX_VOCAB_SIZE = 100_000  # GPT-2's 50,257 and BERT's 30,522 fit twice over
MAX_POSITIONS = 8192  # max_len: the positional-encoding table is max_len × d_model numbers
MAX_PARAMETERS = 300_000_000  # 1.2 GB of float32 weights, ~5 GB with gradients and Adam's moments
# A page that builds whatever its user asks (Build, up to MAX_PARAMETERS) builds a model this large
# or larger inside `large_build`: one at a time in the server, so thirty students asking at once
# take one model's memory (≤ 1.2 GB, 3 s to build), not thirty. Smaller ones (the toy defaults
# are ~0.1 M) never wait.
LARGE_BUILD_PARAMETERS = 20_000_000
_LARGE_BUILD = threading.Lock()


@contextmanager
def large_build(cfg: TransformerConfig) -> Iterator[None]:
    """Hold the server's one large-build place while building and running `cfg`'s model, when it has
    LARGE_BUILD_PARAMETERS or more; a smaller model goes ahead at once."""
    if cfg.n_parameters() < LARGE_BUILD_PARAMETERS:
        yield
        return
    with _LARGE_BUILD:
        yield


@dataclass(frozen=True)
class TransformerConfig:
    """Architecture of the scratch Transformer. The defaults are a small model that learns the toy
    tasks (copy, reverse, sort) in seconds on a laptop CPU; the paper's base model is
    d_model=512, n_heads=8, 6+6 layers, d_ff=2048, dropout=0.1."""

    src_vocab_size: int = 16  # the toy tasks' digits plus <pad>, <bos>, <eos>, <unk>
    tgt_vocab_size: int = 16
    d_model: int = 64  # small enough to train in seconds, large enough for 4 heads of 16
    n_heads: int = 4
    n_encoder_layers: int = 2  # 0: a decoder-only model (GPT's form), built by `DecoderOnlyTransformer`
    n_decoder_layers: int = 2
    d_ff: int = 256  # 4 × d_model, the paper's ratio
    dropout: float = 0.0  # toy tasks have unlimited fresh data: nothing to regularise against
    norm_first: bool = False  # False: post-norm, the paper; True: pre-norm, easier to train deep
    activation: str = "relu"  # the paper's; "gelu" as in BERT and GPT
    max_len: int = 128  # longest sequence the positional encoding covers
    tie_embeddings: bool = False  # share the target embedding with the output layer
    share_embeddings: bool = False  # Section 3.4, the paper's: ONE matrix is the source embedding, the
    # target embedding and the output layer; needs one vocabulary for both sides (the paper's 37,000 BPE tokens)
    pad_id: int = 0
    layer_norm_eps: float = 1e-5  # nn.LayerNorm's default, so parity with nn.Transformer holds

    def __post_init__(self):
        for name in ("src_vocab_size", "tgt_vocab_size", "d_model", "n_heads", "d_ff", "max_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive whole number.")
        value = self.n_encoder_layers
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(
                f"n_encoder_layers={value!r} must be a whole number, 0 or more (0: a decoder-only model, as GPT)."
            )
        value = self.n_decoder_layers
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"n_decoder_layers={value!r} must be at least 1: the decoder is what predicts tokens.")
        for name, limit in (
            ("n_encoder_layers", MAX_LAYERS),
            ("n_decoder_layers", MAX_LAYERS),
            ("d_model", MAX_D_MODEL),
            ("d_ff", MAX_D_FF),
            ("src_vocab_size", MAX_VOCAB_SIZE),
            ("tgt_vocab_size", MAX_VOCAB_SIZE),
            ("max_len", MAX_POSITIONS),
        ):
            if getattr(self, name) > limit:
                raise ValueError(
                    f"{name}={getattr(self, name):,} is over this server's limit of {limit:,}: "
                    "a model that large would take the shared machine's memory and time from everyone."
                )
        if self.d_model % self.n_heads:
            raise ValueError(
                f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}: each head gets "
                f"d_model / n_heads dimensions. Try n_heads in {_divisors(self.d_model)}."
            )
        if self.d_model % 2:
            raise ValueError(
                f"d_model={self.d_model} must be even: the positional encoding pairs sin and cos dimensions."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout} must be in [0, 1).")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation={self.activation!r} is not one of {sorted(ACTIVATIONS)}.")
        for name in ("src_vocab_size", "tgt_vocab_size"):
            if not 0 <= self.pad_id < getattr(self, name):
                raise ValueError(f"pad_id={self.pad_id} must be a token id below {name}={getattr(self, name)}.")
        if self.tie_embeddings and self.tgt_vocab_size < 1:
            raise ValueError("tie_embeddings needs a target vocabulary.")
        if self.share_embeddings and self.decoder_only:
            raise ValueError(
                "share_embeddings=True shares the source embedding, but a decoder-only model (n_encoder_layers=0) "
                "has none: use tie_embeddings=True to share its one embedding with the output layer (as GPT-2 does)."
            )
        if self.share_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError(
                f"share_embeddings=True needs one vocabulary for source and target, but src_vocab_size="
                f"{self.src_vocab_size} and tgt_vocab_size={self.tgt_vocab_size}: one matrix cannot hold both. "
                "Use one shared vocabulary (the paper's has 37,000 tokens), or share_embeddings=False "
                "(tie_embeddings=True still shares the target embedding with the output layer)."
            )
        if self.n_parameters() > MAX_PARAMETERS:
            raise ValueError(
                f"This model would have {self.n_parameters() / 1e6:,.0f}M parameters, over this server's "
                f"limit of {MAX_PARAMETERS / 1e6:,.0f}M (the paper's big model has 213M): use a smaller "
                "d_model, d_ff, vocabulary or fewer layers."
            )

    @property
    def decoder_only(self) -> bool:
        """No encoder: decoder blocks without cross-attention (GPT's form); src_vocab_size is unused."""
        return self.n_encoder_layers == 0

    @property
    def output_tied(self) -> bool:
        """Whether the output layer's matrix is the target embedding's (tied, or shared three ways)."""
        return self.tie_embeddings or self.share_embeddings

    def block_settings(self) -> dict:
        """What every encoder and decoder block of this model is built with (`Encoder`, `Decoder`)."""
        return dict(
            d_model=self.d_model,
            n_heads=self.n_heads,
            d_ff=self.d_ff,
            dropout=self.dropout,
            activation=self.activation,
            norm_first=self.norm_first,
            eps=self.layer_norm_eps,
        )

    def n_parameters(self) -> int:
        """How many parameters `Transformer(self)` has, counted from the config without building it."""
        d, f = self.d_model, self.d_ff
        attention = 4 * d * d + 4 * d  # W_Q, W_K, W_V, W_O and their biases
        feed_forward = 2 * d * f + f + d
        norm = 2 * d  # a LayerNorm's gain and bias
        if self.decoder_only:  # no encoder, no cross-attention (and its LayerNorm), one embedding
            encoder, cross = 0, 0
            embeddings = self.tgt_vocab_size * d
        else:
            encoder = self.n_encoder_layers * (attention + feed_forward + 2 * norm) + norm
            cross = attention + norm
            embeddings = (self.src_vocab_size + (0 if self.share_embeddings else self.tgt_vocab_size)) * d
        decoder = self.n_decoder_layers * (attention + cross + feed_forward + 2 * norm) + norm
        generator = self.tgt_vocab_size * (1 if self.output_tied else d + 1)  # tied: only its bias is new
        return embeddings + encoder + decoder + generator

    # -- the paper's models (Table 3), as `Transformer(cfg)` builds them ------------------------
    @classmethod
    def paper_base(cls, vocab_size: int = 37_000, **overrides) -> TransformerConfig:
        """Table 3's "base": N=6, d_model=512, d_ff=2048, h=8, P_drop=0.1, one embedding matrix
        shared three ways over a shared vocabulary (Section 3.4). 63.1M parameters at 37,000 tokens
        against the paper's 65M (`model_zoo.scratch.paper` explains the gap). Build it on the meta
        device (`with torch.device("meta"):`) to count or draw it without allocating 250 MB."""
        return cls(**{**_paper_settings(vocab_size, 512, 8, 2048, 0.1), **overrides})

    @classmethod
    def paper_big(cls, vocab_size: int = 37_000, **overrides) -> TransformerConfig:
        """Table 3's "big": N=6, d_model=1024, d_ff=4096, h=16, P_drop=0.3, embeddings shared three
        ways. 214.3M parameters at 37,000 tokens against the paper's 213M."""
        return cls(**{**_paper_settings(vocab_size, 1024, 16, 4096, 0.3), **overrides})

    @classmethod
    def from_dict(cls, data: dict) -> TransformerConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"model_type"})
        if unknown:
            raise ValueError(f"Unknown config field(s) {unknown}; known fields are {sorted(known)}.")
        return cls(**{k: v for k, v in data.items() if k in known})


def _paper_settings(vocab_size: int, d_model: int, n_heads: int, d_ff: int, dropout: float) -> dict:
    return dict(
        src_vocab_size=vocab_size,
        tgt_vocab_size=vocab_size,
        d_model=d_model,
        n_heads=n_heads,
        n_encoder_layers=6,
        n_decoder_layers=6,
        d_ff=d_ff,
        dropout=dropout,
        share_embeddings=True,
    )


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, min(n, 16) + 1) if n % d == 0]


@dataclass
class TransformerOutput:
    """What the model computed.

    logits: (B, T, V), unnormalised scores of the next target token at each position.
    attentions: when asked, {"encoder_self": [(B, H, S, S)] * L, "decoder_self": [(B, H, T, T)] * L,
        "cross": [(B, H, T, S)] * L}, one tensor a layer. Hugging Face models in `model_zoo` return
        the same shape, so one attention view serves both.
    """

    logits: Tensor
    attentions: dict[str, list[Tensor]] | None = None

    def probabilities(self) -> Tensor:
        """Softmax over the vocabulary, for display. (The loss works on log-probabilities.)"""
        return self.logits.softmax(dim=-1)


@dataclass
class EncoderOutput:
    memory: Tensor  # (B, S, D)
    src_mask: Tensor  # (B, S) True = real token
    attentions: list[Tensor] | None = None  # [(B, H, S, S)] * L

    def attention_mask(self) -> Tensor | None:
        """src_mask as (B, 1, 1, S) for attention, or None when there is no padding (the fused
        kernels' fastest path). Computed once: decoding asks at every step."""
        if not hasattr(self, "_attention_mask"):
            self._attention_mask = padding_mask(self.src_mask)
        return self._attention_mask


class DecoderCache:
    """Keys and values of every decoder block, so each decoding step computes only the new token."""

    def __init__(self, n_layers: int):
        self.layers = [DecoderLayerCache() for _ in range(n_layers)]
        self.length = 0  # tokens decoded so far: the position of the next one

    def reorder(self, index: Tensor) -> None:
        """Keep batch rows `index` (in this order) in every layer's cache."""
        for layer in self.layers:
            layer.self_attn.reorder(index)
            layer.cross_attn.reorder(index)


class Transformer(nn.Module):
    """Implements Figure 1: embeddings + positional encoding, N encoder blocks, N decoder blocks,
    and a final linear layer (the "generator") whose softmax predicts the next token."""

    decoder_only = False  # which kind of config this class builds (`DecoderOnlyTransformer`: True)

    def __init__(self, cfg: TransformerConfig | None = None):
        super().__init__()
        cfg = cfg or TransformerConfig()
        if cfg.decoder_only != self.decoder_only:
            raise ValueError(
                "n_encoder_layers=0 is a decoder-only model: build it with DecoderOnlyTransformer(cfg) "
                "(or build_model(cfg))."
                if cfg.decoder_only
                else f"DecoderOnlyTransformer needs n_encoder_layers=0, got {cfg.n_encoder_layers}: "
                "build an encoder-decoder with Transformer(cfg) (or build_model(cfg))."
            )
        self.cfg = cfg
        block = cfg.block_settings()
        if not cfg.decoder_only:
            self.src_embed = Embeddings(cfg.src_vocab_size, cfg.d_model)
        self.tgt_embed = Embeddings(cfg.tgt_vocab_size, cfg.d_model)
        self.positional_encoding = PositionalEncoding(cfg.d_model, cfg.max_len, cfg.dropout)
        if not cfg.decoder_only:
            self.encoder = Encoder(cfg.n_encoder_layers, **block)
        self.decoder = Decoder(cfg.n_decoder_layers, cross_attention=not cfg.decoder_only, **block)
        self.generator = nn.Linear(cfg.d_model, cfg.tgt_vocab_size)
        self._init_weights()
        if cfg.share_embeddings:
            self.tgt_embed.lut.weight = self.src_embed.lut.weight
        if cfg.output_tied:
            self.generator.weight = self.tgt_embed.lut.weight

    def _init_weights(self) -> None:
        # Xavier on every matrix, embeddings included, as the Annotated Transformer does. PyTorch's
        # N(0, 1) embeddings, times √d_model, drown the positional encoding: copy does not learn.
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    @property
    def device(self) -> torch.device:
        return self.generator.weight.device

    # -- input checks: a clear message instead of a matmul error -------------------------------
    def _check_tokens(self, name: str, tokens: Tensor, vocab_size: int, offset: int = 0) -> None:
        if not isinstance(tokens, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor of token ids, got {type(tokens).__name__}.")
        if tokens.dim() != 2:
            raise ValueError(
                f"{name} must have shape (batch, length), got {tuple(tokens.shape)} (rank {tokens.dim()})."
            )
        if tokens.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"{name} must hold integer token ids (torch.long), got {tokens.dtype}.")
        if tokens.size(1) == 0:
            raise ValueError(f"{name} is empty: it needs at least one token.")
        if offset + tokens.size(1) > self.cfg.max_len:
            raise ValueError(
                f"{name} has length {offset + tokens.size(1)} but the model's max_len is {self.cfg.max_len}: "
                "shorten the input or build the model with a larger max_len."
            )
        lo, hi = (int(v) for v in torch.aminmax(tokens))
        if lo < 0 or hi >= vocab_size:
            bad = lo if lo < 0 else hi
            raise ValueError(f"{name} holds token id {bad}, outside the vocabulary [0, {vocab_size - 1}].")

    @staticmethod
    def _check_mask(name: str, mask: Tensor, tokens: Tensor) -> None:
        if mask.dtype != torch.bool or mask.shape != tokens.shape:
            raise ValueError(
                f"{name} must be a boolean tensor of shape {tuple(tokens.shape)} (True = real token), "
                f"got {mask.dtype} of shape {tuple(mask.shape)}."
            )

    # -- the two halves ------------------------------------------------------------------------
    def encode(self, src: Tensor, src_mask: Tensor | None = None, return_attention: bool = False) -> EncoderOutput:
        """src (B, S) token ids -> memory (B, S, D). `src_mask` (B, S), True = real token, defaults
        to src != pad_id."""
        self._check_tokens("src", src, self.cfg.src_vocab_size)
        if src_mask is None:
            src_mask = src != self.cfg.pad_id
        self._check_mask("src_mask", src_mask, src)
        x = self.positional_encoding(self.src_embed(src))  # (B, S, D)
        memory, attentions = self.encoder(x, padding_mask(src_mask), return_attention)  # mask (B, 1, 1, S)
        return EncoderOutput(memory, src_mask, attentions if return_attention else None)

    def decode(
        self,
        tgt_in: Tensor,
        encoded: EncoderOutput,
        tgt_mask: Tensor | None = None,
        return_attention: bool = False,
        cache: DecoderCache | None = None,
    ) -> TransformerOutput:
        """tgt_in (B, T) -> logits (B, T, V). The look-ahead mask is always applied; `tgt_mask` (B, T)
        marks real tokens (default tgt_in != pad_id). With a `cache`, tgt_in holds only the new
        tokens, placed after the `cache.length` already decoded."""
        offset = cache.length if cache is not None else 0
        self._check_tokens("tgt_in", tgt_in, self.cfg.tgt_vocab_size, offset)
        if cache is None:
            if tgt_mask is None:
                tgt_mask = tgt_in != self.cfg.pad_id
            self._check_mask("tgt_mask", tgt_mask, tgt_in)
            self_mask = padding_mask(tgt_mask)  # (B, 1, 1, T); the causal mask is the attention's
        else:
            self_mask = None  # generated tokens are never padding
        memory_mask = encoded.attention_mask()  # (B, 1, 1, S), or None without padding
        y = self.positional_encoding(self.tgt_embed(tgt_in), offset=offset)  # (B, T, D)
        layer_caches = cache.layers if cache is not None else None
        h, self_attn, cross_attn = self.decoder(
            y, encoded.memory, self_mask, memory_mask, return_attention, layer_caches
        )
        if cache is not None:
            cache.length += tgt_in.size(1)
        attentions = {"decoder_self": self_attn, "cross": cross_attn} if return_attention else None
        return TransformerOutput(self.generator(h), attentions)  # (B, T, V)

    def forward(
        self,
        src: Tensor,
        tgt_in: Tensor,
        src_mask: Tensor | None = None,
        tgt_mask: Tensor | None = None,
        return_attention: bool = False,
    ) -> TransformerOutput:
        """src (B, S), tgt_in (B, T) (the target shifted right, starting with <bos>) -> logits (B, T, V)."""
        encoded = self.encode(src, src_mask, return_attention)
        out = self.decode(tgt_in, encoded, tgt_mask, return_attention)
        if return_attention:
            out.attentions = {"encoder_self": encoded.attentions, **out.attentions}
        return out

    def new_cache(self) -> DecoderCache:
        return DecoderCache(self.cfg.n_decoder_layers)

    def loss(self, logits: Tensor, tgt_out: Tensor, label_smoothing: float = 0.0) -> Tensor:
        """Cross-entropy on log-probabilities (log-softmax inside), padding ignored.
        logits (B, T, V), tgt_out (B, T) -> scalar."""
        return F.cross_entropy(
            logits.reshape(-1, logits.size(-1)),
            tgt_out.reshape(-1),
            ignore_index=self.cfg.pad_id,
            label_smoothing=label_smoothing,
        )

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def layer_groups(self) -> dict[str, list[tuple[str, nn.Parameter]]]:
        """Parameters grouped the way a student reads the model, in forward order:
        "src_embed", "tgt_embed", "encoder.0", ..., "encoder.norm", "decoder.0", ..., "decoder.norm",
        "generator". Each value lists (parameter name, parameter). Tied weights appear once."""
        groups: dict[str, list[tuple[str, nn.Parameter]]] = {}
        for name, p in self.named_parameters():  # named_parameters skips the tied duplicate
            parts = name.split(".")
            if parts[0] in ("encoder", "decoder"):
                key = f"{parts[0]}.{parts[2]}" if parts[1] == "layers" else f"{parts[0]}.{parts[1]}"
            else:
                key = parts[0]
            groups.setdefault(key, []).append((name, p))
        return groups

    # -- safetensors on disk, the Hugging Face file names -------------------------------------
    def saved_state(self) -> dict[str, Tensor]:
        """The tensors a saved run holds: the state dict, each shared matrix once (safetensors
        refuses two names for one tensor), under the name of its first owner."""
        state = self.state_dict()
        if self.cfg.output_tied:
            del state["generator.weight"]  # the same tensor as tgt_embed.lut.weight
        if self.cfg.share_embeddings:
            del state["tgt_embed.lut.weight"]  # the same tensor as src_embed.lut.weight
        return state

    def _tensors_to_save(self) -> dict[str, Tensor]:
        return {k: v.detach().cpu().contiguous() for k, v in self.saved_state().items()}

    def save(self, directory: str | Path) -> Path:
        """Write `config.json` and `model.safetensors` into `directory`, each atomically."""
        from safetensors.torch import save

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(directory / WEIGHTS_FILE, save(self._tensors_to_save(), metadata={"format": "pt"}))
        atomic_write_json(directory / CONFIG_FILE, {"model_type": MODEL_TYPE, **asdict(self.cfg)})
        return directory

    @classmethod
    def load(cls, directory: str | Path, map_location: str | torch.device = "cpu") -> Transformer:
        """Rebuild a model saved with `save`. Tensors that don't fit the config are an error that
        names the first mismatched tensor and both shapes."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        directory = Path(directory)
        config = read_json(directory / CONFIG_FILE)
        if not isinstance(config, dict) or config.get("model_type", MODEL_TYPE) != MODEL_TYPE:
            raise ValueError(f"{directory / CONFIG_FILE} is not a scratch Transformer config.")
        model = build_model(TransformerConfig.from_dict(config))
        weights_path = directory / WEIGHTS_FILE
        if not weights_path.is_file():
            raise FileNotFoundError(f"{weights_path} does not exist: the run has no saved weights.")
        try:
            tensors = load_file(str(weights_path), device=str(map_location))
        except (SafetensorError, OSError, ValueError) as err:
            raise ValueError(f"{weights_path} is not a readable safetensors file ({err}); save the run again.") from err
        expected = model._tensors_to_save()
        for name, tensor in expected.items():
            if name not in tensors:
                raise ValueError(
                    f"{weights_path} has no tensor {name!r} (shape {tuple(tensor.shape)}) that the config needs."
                )
            if tensors[name].shape != tensor.shape:
                raise ValueError(
                    f"Tensor {name!r} in {weights_path} has shape {tuple(tensors[name].shape)}, "
                    f"but config.json needs {tuple(tensor.shape)}: the weights and config don't belong together."
                )
        extra = sorted(set(tensors) - set(expected))
        if extra:
            raise ValueError(f"{weights_path} has tensor {extra[0]!r} that this config has no place for.")
        # The shared matrices' other names are missing on purpose: loading the first fills them all.
        model.load_state_dict(tensors, strict=not (model.cfg.output_tied or model.cfg.share_embeddings))
        return model.to(map_location)

    def config_json(self) -> str:
        return json.dumps(asdict(self.cfg), indent=2)


class DecoderOnlyTransformer(Transformer):
    """The paper's decoder alone, as GPT uses it: embeddings + positional encoding, N decoder blocks
    whose cross-attention is simply absent (`Decoder(cross_attention=False)`: the same blocks), and
    the output layer, trained to predict each next token. Its config has n_encoder_layers=0; its
    parts keep the encoder-decoder's names (`tgt_embed`, `decoder`, `generator`), so counting,
    saving, loading, the loss and the layer groups are `Transformer`'s."""

    decoder_only = True

    def encode(self, *args, **kwargs) -> EncoderOutput:
        raise ValueError("A decoder-only model has no encoder: call model(tokens) on the text so far.")

    def decode(self, *args, **kwargs) -> TransformerOutput:
        raise ValueError("A decoder-only model reads no encoder output: call model(tokens) on the text so far.")

    def forward(
        self,
        tokens: Tensor,
        mask: Tensor | None = None,
        return_attention: bool = False,
        cache: DecoderCache | None = None,
    ) -> TransformerOutput:
        """tokens (B, T) -> logits (B, T, V), at each position the scores of the token after it.
        The causal mask is always applied; `mask` (B, T) marks real tokens (default tokens != pad_id).
        With a `cache`, `tokens` holds only the new tokens, placed after the `cache.length` before.
        Attentions, when asked: {"decoder_self": [(B, H, T, T')] * L}."""
        offset = cache.length if cache is not None else 0
        self._check_tokens("tokens", tokens, self.cfg.tgt_vocab_size, offset)
        if cache is None:
            if mask is None:
                mask = tokens != self.cfg.pad_id
            self._check_mask("mask", mask, tokens)
            self_mask = padding_mask(mask)  # (B, 1, 1, T), or None without padding
        else:
            self_mask = None  # generated tokens are never padding
        x = self.positional_encoding(self.tgt_embed(tokens), offset=offset)  # (B, T, D)
        layer_caches = cache.layers if cache is not None else None
        h, self_attn, _ = self.decoder(x, None, self_mask, None, return_attention, layer_caches)
        if cache is not None:
            cache.length += tokens.size(1)
        return TransformerOutput(self.generator(h), {"decoder_self": self_attn} if return_attention else None)


def build_model(cfg: TransformerConfig) -> Transformer:
    """The model a config describes: `DecoderOnlyTransformer` when n_encoder_layers=0, else `Transformer`."""
    return (DecoderOnlyTransformer if cfg.decoder_only else Transformer)(cfg)
