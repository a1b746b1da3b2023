"""Three families from the same blocks: encoder-decoder (the paper, T5), decoder-only (GPT) and
encoder-only (BERT, the MiniLM of the Fine-tune page).

Each is built from `model_zoo.scratch.layers`: the encoder-only form is the paper's encoder stack
(`Encoder`, the same `EncoderBlock`s) with an embedding and an output layer, nothing written twice.
`families(cfg)` counts all three for one set of settings, each built on the meta device (shapes
only, no memory), and says which attention each has.

Shapes: B batch, S length, D d_model, H heads, V vocabulary, L layers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from model_zoo.scratch.attention import padding_mask
from model_zoo.scratch.layers import Embeddings, Encoder, PositionalEncoding
from model_zoo.scratch.transformer import Transformer, TransformerConfig, TransformerOutput, build_model


class EncoderOnlyTransformer(nn.Module):
    """BERT's form: embeddings + positional encoding, the paper's N encoder blocks (self-attention
    over every token, before and after: no causal mask) ending in a LayerNorm, and an output layer
    that predicts each position's token (a masked-language-model head). Uses the config's source
    vocabulary and encoder depth; `tie_embeddings` ties the output layer to the embedding.

    (BERT adds learned positions, segment embeddings and a pooler for classification; the blocks
    are these.)"""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        if cfg.n_encoder_layers < 1:
            raise ValueError("An encoder-only model needs at least one encoder block (n_encoder_layers >= 1).")
        self.cfg = cfg
        self.src_embed = Embeddings(cfg.src_vocab_size, cfg.d_model)
        self.positional_encoding = PositionalEncoding(cfg.d_model, cfg.max_len, cfg.dropout)
        self.encoder = Encoder(cfg.n_encoder_layers, **cfg.block_settings())
        self.generator = nn.Linear(cfg.d_model, cfg.src_vocab_size)
        if cfg.output_tied:
            self.generator.weight = self.src_embed.lut.weight

    def forward(self, tokens: Tensor, mask: Tensor | None = None, return_attention: bool = False) -> TransformerOutput:
        """tokens (B, S) -> logits (B, S, V): at each position, its own token (every token read).
        Attentions, when asked: {"encoder_self": [(B, H, S, S)] * L}."""
        mask = tokens != self.cfg.pad_id if mask is None else mask
        x = self.positional_encoding(self.src_embed(tokens))  # (B, S, D)
        h, attentions = self.encoder(x, padding_mask(mask), return_attention)  # (B, S, D)
        return TransformerOutput(self.generator(h), {"encoder_self": attentions} if return_attention else None)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


@dataclass(frozen=True)
class Family:
    """One way to stack the paper's blocks, for the student's settings."""

    name: str
    examples: str
    self_attention: str  # which tokens a position reads
    cross_attention: bool  # decoder blocks reading an encoder's output
    blocks: str  # e.g. "2 encoder + 2 decoder"
    parameters: int  # built on the meta device
    trains_to: str  # what it learns to predict


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def family_configs(cfg: TransformerConfig) -> dict[str, TransformerConfig]:
    """The student's settings for each family: the encoder-decoder as set (at least one encoder
    block), the decoder-only with the decoder's blocks, the encoder-only with the encoder's."""
    n_enc = max(cfg.n_encoder_layers, 1)
    return {
        "encoder-decoder": replace(cfg, n_encoder_layers=n_enc),
        "decoder-only": replace(cfg, n_encoder_layers=0, share_embeddings=False),
        "encoder-only": replace(cfg, n_encoder_layers=n_enc),
    }


def families(cfg: TransformerConfig) -> list[Family]:
    """The three families for `cfg`'s width, heads, feed-forward, vocabulary and depths, each built
    on the meta device and counted."""
    configs = family_configs(cfg)
    with torch.device("meta"):  # shapes only: even the paper's big model costs nothing
        counts = {
            "encoder-decoder": _count(Transformer(configs["encoder-decoder"])),
            "decoder-only": _count(build_model(configs["decoder-only"])),
            "encoder-only": _count(EncoderOnlyTransformer(configs["encoder-only"])),
        }
    enc, dec = configs["encoder-decoder"].n_encoder_layers, cfg.n_decoder_layers
    return [
        Family(
            "encoder-decoder",
            "the paper, T5, BART",
            "encoder: all tokens; decoder: causal",
            True,
            f"{enc} encoder + {dec} decoder",
            counts["encoder-decoder"],
            "the next target token, given the whole source",
        ),
        Family(
            "decoder-only",
            "GPT, the Hamlet task",
            "causal: earlier tokens only",
            False,
            f"{dec} decoder (no cross-attention)",
            counts["decoder-only"],
            "the next token of the text",
        ),
        Family(
            "encoder-only",
            "BERT, the MiniLM of Fine-tune",
            "all tokens, before and after",
            False,
            f"{enc} encoder",
            counts["encoder-only"],
            "hidden (masked) tokens; then a label for the sentence",
        ),
    ]


def family_dot(family: Family) -> str:
    """One family as a small graphviz diagram, bottom-up: its embeddings, its blocks and the
    sub-layers they hold, and the output layer."""
    box = 'node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10]'
    enc_block = (
        '  subgraph cluster_enc { label="encoder block × N"; style=rounded; color="#0072b2";\n'
        '    es [label="self-attention\\n(every token)", fillcolor="#d6eaf8"];\n'
        '    ef [label="feed-forward", fillcolor="#d5f5e3"]; es -> ef; }'
    )
    dec_block = (
        '  subgraph cluster_dec { label="decoder block × N"; style=rounded; color="#d55e00";\n'
        '    ds [label="masked self-attention\\n(earlier tokens)", fillcolor="#fdebd0"];\n'
        + ('    dc [label="cross-attention\\n(over the encoder)", fillcolor="#d6eaf8"]; ds -> dc;\n' if family.cross_attention else "")
        + f'    df [label="feed-forward", fillcolor="#d5f5e3"]; {"dc" if family.cross_attention else "ds"} -> df; }}'
    )  # fmt: skip
    lines = [
        f"digraph {family.name.replace('-', '_')} {{",
        f"  rankdir=BT; {box};",
        f'  label="{family.name}\\n{family.parameters:,} parameters"; labelloc=t; fontname="Helvetica"; fontsize=12;',
        '  out [label="linear + softmax", fillcolor="#f0f0f0"];',
    ]
    if family.name == "encoder-decoder":
        lines += [
            '  src [label="source embedding\\n+ position", fillcolor="#f0f0f0"];',
            '  tgt [label="target embedding\\n+ position", fillcolor="#f0f0f0"];',
            enc_block,
            dec_block,
            '  src -> es; ef -> dc [color="#0072b2"]; tgt -> ds; df -> out;',
        ]
    elif family.name == "decoder-only":
        lines += ['  tgt [label="embedding + position", fillcolor="#f0f0f0"];', dec_block, "  tgt -> ds; df -> out;"]
    else:
        lines += ['  src [label="embedding + position", fillcolor="#f0f0f0"];', enc_block, "  src -> es; ef -> out;"]
    lines.append("}")
    return "\n".join(lines)


def families_caption(family_list: list[Family]) -> str:
    """What to look for in the three counts, computed from them."""
    by_name = {f.name: f for f in family_list}
    both, gpt, bert = by_name["encoder-decoder"], by_name["decoder-only"], by_name["encoder-only"]
    if gpt.parameters == bert.parameters:
        same = (
            f"The decoder-only and the encoder-only model have the same {gpt.parameters:,} parameters: with as many "
            "blocks, a GPT block and a BERT block hold the same weights, and only the causal mask tells them apart. "
        )
    else:
        more, fewer = (gpt, bert) if gpt.parameters > bert.parameters else (bert, gpt)
        same = (
            f"The {more.name} model has {more.parameters - fewer.parameters:,} more parameters than the {fewer.name} "
            f"one ({more.blocks} against {fewer.blocks}): a block of either holds the same weights, only the mask differs. "
        )
    return same + (
        f"The encoder-decoder ({both.parameters:,}) has both stacks, plus a cross-attention in every decoder block."
    )
