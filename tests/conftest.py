"""Test-wide settings: never wait on the Hugging Face hub (it is not reachable here), keep
threads to the machine's two cores, and write runs to a temp folder."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# OpenMP threads that spin while waiting make torch 100x slower when another process (a DDP
# worker, a Streamlit server under test) holds a core: let them sleep instead.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
