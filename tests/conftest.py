"""Test-wide settings and fixtures: never wait on the Hugging Face hub (it is not reachable here), keep
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
# The app makes its starter runs (minutes of training) when it starts: not in every test's weights
# folder. tests/test_starter.py makes them, shorter.
os.environ.setdefault("WORKBENCH_STARTER_RUNS", "0")
# The app opens a typed model folder only inside the folders its teacher lists: the tests' tiny
# models (tests/hf_tiny.py) are made in temporary folders.
os.environ.setdefault("WORKBENCH_MODEL_FOLDERS", __import__("tempfile").gettempdir())


import pytest  # noqa: E402  (after the environment above, which torch reads when it loads)
import torch  # noqa: E402


@pytest.fixture
def weights_dir(tmp_path, monkeypatch):
    """A fresh weights folder for this test (WORKBENCH_WEIGHTS_DIR): where the CLI and the app
    write the runs users name."""
    folder = tmp_path / "weights"
    folder.mkdir()
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(folder))
    return folder


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """The app sets one torch thread for its server process when it starts
    (`distributed.use_server_threads`), and AppTest runs the app in this process: each test gives
    back the thread count it found."""
    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread, and a second OpenMP thread competing with other
    processes on a shared 2-core machine can make each step 100x slower. Modules that train tiny
    models use it with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
