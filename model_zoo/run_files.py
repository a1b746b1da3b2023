"""What a saved run folder holds, file by file (name, size, what it is for), and the three lines of
code that load it back: a scratch run through `model_zoo.toy.runs.load_run`, a fine-tuned one
through Hugging Face's `from_pretrained`. The file names are `run_folder`'s; this module only
describes them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from model_zoo.run_folder import (
    ATTENTION_SNAPSHOTS_FILE,
    COMPARISON_FILE,
    CONFIG_FILE,
    FINETUNE,
    FINETUNE_CONFIG_FILE,
    HISTORY_FILE,
    LABELS_FILE,
    METRICS_FILE,
    RUN_FILE,
    SCRATCH,
    STATE_FILE,
    STATE_TENSORS_FILE,
    TRAIN_CONFIG_FILE,
    VOCAB_FILE,
    WEIGHTS_FILE,
    run_kind,
)
from model_zoo.utils import read_json

HOLDS = {
    WEIGHTS_FILE: "every weight tensor by name (safetensors: tensors only, no code; what load_state_dict reads)",
    CONFIG_FILE: "the architecture (sizes, layers, vocabulary size): what to build before the weights go in",
    RUN_FILE: "what kind of run this is, its task or data, and its final scores",
    HISTORY_FILE: "every step's loss and learning rate, and every evaluation: the training curves",
    VOCAB_FILE: "the toy vocabulary: token ↔ id",
    TRAIN_CONFIG_FILE: "the training settings (steps, batch, learning rate, warmup): how to train it again",
    STATE_TENSORS_FILE: "the optimizer's moments (Adam's m and v) at the last step: to resume training exactly",
    STATE_FILE: "the step, the scheduler and the random state at the last step: to resume training",
    ATTENTION_SNAPSHOTS_FILE: "one probe's attention maps at each evaluation: attention over training",
    LABELS_FILE: "the label names in id order: id 0 is the first",
    FINETUNE_CONFIG_FILE: "the fine-tuning settings (model, data, epochs, learning rate, frozen layers)",
    METRICS_FILE: "accuracy and macro-F1 before and after fine-tuning",
    COMPARISON_FILE: "every held-out sentence's prediction before and after: the Compare page",
    "tokenizer.json": "the tokenizer: word-piece vocabulary and splitting rules (fast tokenizer)",
    "tokenizer_config.json": "the tokenizer's settings (lower-casing, max length, special tokens)",
    "special_tokens_map.json": "which tokens are [CLS], [SEP], [PAD], [UNK]",
    "vocab.txt": "the word-piece vocabulary, one a line (id = line number)",
    "generation_config.json": "how a text-to-text model writes (start token, max length)",
    "spiece.model": "the SentencePiece model of a T5 tokenizer",
}


@dataclass(frozen=True)
class RunFile:
    name: str
    size_bytes: int
    holds: str  # "" for a file this module does not know


def run_files(folder: str | Path) -> list[RunFile]:
    """Every file of run `folder` (hidden files aside), largest first."""
    files = [p for p in Path(folder).iterdir() if p.is_file() and not p.name.startswith(".")]
    return sorted(
        (RunFile(p.name, p.stat().st_size, HOLDS.get(p.name, "")) for p in files),
        key=lambda f: (-f.size_bytes, f.name),
    )


def load_snippet(folder: str | Path) -> str:
    """Three lines that load run `folder` back and make it ready to use."""
    folder = Path(folder)
    kind = run_kind(folder)
    if kind == SCRATCH:
        return (
            "from model_zoo.toy.runs import load_run\n"
            f"run = load_run({str(folder)!r})  # run.model: the Transformer, run.vocab: its tokens\n"
            "model = run.model.eval()"
        )
    if kind == FINETUNE:
        info = read_json(folder / RUN_FILE) if (folder / RUN_FILE).is_file() else {}
        auto = "AutoModelForSeq2SeqLM" if info.get("task") == "text2text" else "AutoModelForSequenceClassification"
        return (
            f"from transformers import {auto}, AutoTokenizer\n"
            f"model = {auto}.from_pretrained({str(folder)!r}).eval()\n"
            f"tokenizer = AutoTokenizer.from_pretrained({str(folder)!r})"
        )
    raise ValueError(f"{folder} is a {kind!r} run: only scratch and fine-tuning runs can be loaded.")


def run_files_caption(files: list[RunFile]) -> str:
    """What to look for: how much of the folder is the weights, and that the rest is readable JSON."""
    total = sum(f.size_bytes for f in files)
    weights = next((f for f in files if f.name == WEIGHTS_FILE), None)
    text = f"{len(files)} files, {size_text(total)} in all."
    if weights is not None and total:
        text += (
            f" {WEIGHTS_FILE} is {weights.size_bytes / total:.0%} of it ({size_text(weights.size_bytes)}: about "
            f"{weights.size_bytes // 4:,} float32 numbers)."
        )
        state = next((f for f in files if f.name == STATE_TENSORS_FILE), None)
        if state is not None and weights.size_bytes:
            text += (
                f" {STATE_TENSORS_FILE} is {state.size_bytes / weights.size_bytes:.1f}× the weights: Adam keeps two "
                "numbers (m and v) for every weight; only resuming training needs it."
            )
        text += " The JSON files open in any text editor."
    return text


def size_text(n: int) -> str:
    return f"{n / 1e6:.1f}\u00a0MB" if n >= 1e6 else f"{n / 1e3:.1f}\u00a0kB" if n >= 1e3 else f"{n}\u00a0B"
