"""Test-wide settings and fixtures: never wait on the Hugging Face hub (it is not reachable here), keep
threads to the machine's two cores, and write runs to a temp folder."""

import os
from pathlib import Path

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


# -- the app under AppTest ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """One weights folder for a module of app tests: its runs are made once (module fixtures) and
    every page of the module opens them."""
    return tmp_path_factory.mktemp("weights")


@pytest.fixture
def app_env(weights, monkeypatch):
    """The app as the tests run it: runs in the module's `weights` folder, and WORKBENCH_RAISE
    makes the app's last-resort guard re-raise, so a bug shows up as `at.exception`. A module of
    app tests uses it with `pytestmark = pytest.mark.usefixtures("app_env")`."""
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(weights))
    monkeypatch.setenv("WORKBENCH_RAISE", "1")


# -- tiny real models ---------------------------------------------------------------------------------
def train_tiny_run(
    folder: Path,
    task: str = "copy",
    steps: int = 20,
    eval_every: int = 10,
    batch_size: int = 16,
    layers: int | None = 1,
    seed: int = 0,
    **train_settings,
) -> Path:
    """A tiny scratch run (6 symbols, up to 5 tokens; d_model 16, 2 heads, d_ff 32, `layers` blocks a
    side, or the task's default with None) trained for `steps` and saved in `folder` as the Train
    page saves one: seconds."""
    from model_zoo import Transformer
    from model_zoo.toy.tasks import make_task
    from model_zoo.toy.train_config import TrainConfig
    from model_zoo.toy.training import train

    made = make_task(task, n_symbols=6, max_len=5, n_heldout=32)
    torch.manual_seed(seed)  # the same tiny model every time (unseeded, a copy run sometimes wrote <eos> first)
    blocks = {} if layers is None else {"n_encoder_layers": layers, "n_decoder_layers": layers}
    model = Transformer(made.model_config(d_model=16, n_heads=2, d_ff=32, **blocks))
    config = TrainConfig(steps=steps, eval_every=eval_every, batch_size=batch_size, **train_settings)
    train(model, made, config, checkpoint_dir=folder)
    return folder


@pytest.fixture(scope="session")
def tiny_run():
    """`train_tiny_run`, for fixtures that make the runs a module's tests open."""
    return train_tiny_run
