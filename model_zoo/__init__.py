"""Transformer Workbench's library: a Transformer written from scratch, its training, decoding
and inspection, and thin wrappers over Hugging Face for fine-tuning pretrained models.

`import model_zoo` pulls in only torch and numpy; the Hugging Face libraries load in the modules
that use them (`model_zoo.hf`, ...).
"""

from model_zoo.attention import MultiHeadAttention, scaled_dot_product_attention
from model_zoo.transformer import Transformer, TransformerConfig, TransformerOutput

__all__ = [
    "MultiHeadAttention",
    "Transformer",
    "TransformerConfig",
    "TransformerOutput",
    "scaled_dot_product_attention",
]
