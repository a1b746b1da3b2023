"""Transformer Workbench's library: a Transformer written from scratch, its training, decoding
and inspection, and thin wrappers over Hugging Face for fine-tuning pretrained models.

    scratch/   the Transformer of the paper: attention, layers, the model, parity with nn.Transformer
    toy/       its tasks, training, decoding and saved runs
    views/     looking inside: attention maps, embeddings, weights, dynamics; figures/ draws each with its caption
    hf/        Hugging Face: pretrained models, data, the fine-tuning loop and Trainer, inference
    jobs/      long work for the app (training, fine-tuning) off the page's thread
    commands/  the command line (`python -m model_zoo`)
    utils, packs, distributed, run_folder, run_schema, run_files, environment, decode_step: leaves every package may use

Imports point one way: leaves <- scratch <- toy <- views; hf uses the leaves (tests/test_architecture.py).
`import model_zoo` pulls in only torch and numpy; the Hugging Face libraries load with `model_zoo.hf`.
"""

import os

# Before torch loads: OpenMP threads that spin while they wait make training 10-100x slower
# whenever another process (a second training, the browser, a DDP worker) holds a core, which is
# the usual state of a 2-core laptop or Space. Sleeping threads cost little on an idle machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from model_zoo.scratch.attention import MultiHeadAttention, scaled_dot_product_attention
from model_zoo.scratch.transformer import Transformer, TransformerConfig, TransformerOutput

__all__ = [
    "MultiHeadAttention",
    "Transformer",
    "TransformerConfig",
    "TransformerOutput",
    "scaled_dot_product_attention",
]
