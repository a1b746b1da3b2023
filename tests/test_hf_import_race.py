"""Regression test for the import race that failed CI and a classroom: several threads of a fresh
interpreter doing what the app's threads do at start — the background import of the library, one
session's Fine-tune page loading MiniLM's tokenizer, a second session loading a text-to-text model
(Compare) and a third a local tokenizer — must all succeed. Before `model_zoo.hf` imported the
Hugging Face libraries once, the second thread got "cannot import name 'AutoTokenizer' from
'transformers'" every time on a 2-core machine. Before every module of `model_zoo.hf` that imports
those libraries first imported the package, a page importing `model_zoo.hf.data` while the
background thread was still inside `model_zoo/hf/__init__.py` got "cannot import name
'DataCollatorForSeq2Seq'" (Python does not wait for a package another thread is importing when
asked for a module in it)."""

import os
import subprocess
import sys
from pathlib import Path

from hf_tiny import tiny_bert_dir, tiny_t5_dir

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import sys, threading, time, importlib
errors = []
ready = threading.Event()

def background():  # what streamlit_app.py's import thread does: the pages wait for `ready` only
    try:
        importlib.import_module("pages.ui.sidebar")
        ready.set()
        importlib.import_module("model_zoo.hf.finetune")
    except Exception as err:
        errors.append(f"{type(err).__name__}: {err}")
    finally:
        ready.set()

def after_ready(delay, work, *args):  # a session's thread: `delay` s after the pages may run
    def run():
        ready.wait()
        time.sleep(delay)
        try:
            work(*args)
        except Exception as err:
            errors.append(f"{type(err).__name__}: {err}")
    thread = threading.Thread(target=run)
    thread.start()
    return thread

def tokenizer(name):
    from model_zoo.hf.models import load_tokenizer
    load_tokenizer(name)

def text_to_text(folder):
    from model_zoo.hf.models import load_pretrained
    load_pretrained(folder)

step = float(sys.argv[1])
loader = threading.Thread(target=background)
loader.start()
threads = [
    loader,
    after_ready(0.0, importlib.import_module, "model_zoo.hf.data"),  # the Fine-tune page's first import
    after_ready(step, tokenizer, "minilm-l6"),  # session 1: Fine-tune
    after_ready(2 * step, text_to_text, sys.argv[2]),  # session 2: Compare, a T5 run
    after_ready(3 * step, tokenizer, sys.argv[3]),  # session 3: Fine-tune with a local model
]
for thread in threads:
    thread.join()
print("\n".join(errors) or "ok")
sys.exit(1 if errors else 0)
"""


def test_threads_importing_hugging_face_at_once_all_succeed():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    failures = []
    for step in (0.1, 0.4):  # the old code failed at each of these spacings
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(step), str(tiny_t5_dir()), str(tiny_bert_dir())],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0:
            failures.append(f"threads {step} s apart: {done.stdout.strip() or done.stderr[-500:]}")
    assert not failures, "\n".join(failures)
