"""Transformer Workbench's library: a Transformer written from scratch, its training, decoding
and inspection, and thin wrappers over Hugging Face for fine-tuning pretrained models.

`import model_zoo` pulls in only torch and numpy; the Hugging Face libraries load in the modules
that use them (`model_zoo.hf`, ...).
"""

import os

# Before torch loads: OpenMP threads that spin while they wait make training 10-100x slower
# whenever another process (a second training, the browser, a DDP worker) holds a core, which is
# the usual state of a 2-core laptop or Space. Sleeping threads cost little on an idle machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from model_zoo.attention import MultiHeadAttention, scaled_dot_product_attention
from model_zoo.transformer import Transformer, TransformerConfig, TransformerOutput

__all__ = [
    "MultiHeadAttention",
    "Transformer",
    "TransformerConfig",
    "TransformerOutput",
    "scaled_dot_product_attention",
]
