"""`train` under torchrun: two CPU processes (gloo) end with identical weights; only rank 0 writes."""

import os
import subprocess
import sys
from pathlib import Path

from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parent.parent

WORKER = """
import os, sys, torch
from safetensors.torch import save_file
from model_zoo import Transformer
from model_zoo.toy.tasks import make_task
from model_zoo.toy.training import TrainConfig, train

out = sys.argv[1]
rank = int(os.environ["RANK"])
task = make_task("copy", n_symbols=5, max_len=5)
torch.manual_seed(100 + rank)  # different initial weights: DDP must make them equal
model = Transformer(task.model_config(d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32))
steps = []
history = train(model, task, TrainConfig(steps=8, batch_size=16, eval_every=4), on_step=lambda m: steps.append(m["step"]),
                checkpoint_dir=os.path.join(out, "run"))
save_file({k: v.contiguous() for k, v in model.state_dict().items()}, os.path.join(out, f"rank{rank}.safetensors"))
with open(os.path.join(out, f"rank{rank}.txt"), "w") as f:
    f.write(f"{len(history)} {len(steps)} {history[-1]['exact_match']}")
"""


def test_two_cpu_processes_end_with_identical_weights(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(script),
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0, rank1 = (load_file(str(tmp_path / f"rank{r}.safetensors")) for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    for name in rank0:
        assert (rank0[name] == rank1[name]).all(), name
    # Both trained all 8 steps and agreed on the evaluation; only rank 0 reported progress.
    n0, calls0, exact0 = (tmp_path / "rank0.txt").read_text().split()
    n1, calls1, exact1 = (tmp_path / "rank1.txt").read_text().split()
    assert (n0, n1, calls0, calls1, exact0) == ("8", "8", "8", "0", exact1)
    saved = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert all((saved[k] == rank0[k]).all() for k in saved)
