"""Data-parallel fine-tuning: `torchrun --nproc_per_node=2` on the CPU (gloo), tiny BERT."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hf_tiny import tiny_bert_dir, tiny_csv

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """
import json, os, sys
import torch
from model_zoo.hf.finetune import FinetuneConfig, finetune

out, model, data, loop = sys.argv[1:5]
config = FinetuneConfig(model=model, dataset=data, text_column="review", label_column="sentiment",
                        loop=loop, epochs=1, batch_size=8, max_examples=None, learning_rate=1e-3, test_size=0.2)
result = finetune(config, out)
checksum = sum(p.detach().double().sum().item() for p in result.model.parameters())
with open(os.path.join(os.path.dirname(out), f"rank{os.environ['RANK']}.json"), "w") as f:
    json.dump({"checksum": checksum, "steps": result.steps, "world": os.environ["WORLD_SIZE"]}, f)
"""


@pytest.mark.timeout(240)
@pytest.mark.parametrize("loop", ["trainer", "custom"])
def test_two_processes_train_one_model_and_rank_zero_saves_it(tmp_path, loop):
    script = tmp_path / "ddp_finetune.py"
    script.write_text(SCRIPT)
    out = tmp_path / "ft-ddp"
    env = {
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(script),
            str(out),
            str(tiny_bert_dir()),
            str(tiny_csv()),
            loop,
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group: a timeout ends the workers too
    )
    try:
        _, stderr = proc.communicate(timeout=220)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == ranks[1]["world"] == "2"
    assert ranks[0]["steps"] == ranks[1]["steps"] == 4  # 64 examples / (8 per process × 2)
    assert ranks[0]["checksum"] == pytest.approx(ranks[1]["checksum"], rel=1e-6)  # one model, not two
    assert (out / "model.safetensors").is_file() and (out / "metrics.json").is_file()
