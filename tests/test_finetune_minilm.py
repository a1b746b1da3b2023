"""The real pretrained MiniLM pack on real rotten-tomatoes sentences (slow: about a minute on 2 cores)."""

import pytest

from model_zoo.hf.config import FinetuneConfig
from model_zoo.hf.finetune import finetune
from model_zoo.hf.inference import load_finetuned, predict


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_short_finetune_of_minilm_beats_the_model_before_it(tmp_path):
    # all-MiniLM-L6-v2 was trained for mean pooling, so its [CLS] token must learn to summarise
    # the sentence: with only 40 steps that takes a higher learning rate than BERT's usual 5e-5.
    config = FinetuneConfig(
        model="minilm-l6",
        dataset="rotten_tomatoes",
        data_source="offline",
        max_examples=800,
        epochs=1,
        batch_size=16,
        learning_rate=3e-4,
        max_length=64,
        test_size=0.2,
        eval_each_epoch=False,
    )
    result = finetune(config, tmp_path / "ft-minilm")
    assert result.steps == 40  # 640 training sentences, 160 held out
    assert result.after["accuracy"] >= max(0.65, result.before["accuracy"] + 0.15)
    [p] = predict(load_finetuned(tmp_path / "ft-minilm", attention=False), "a gorgeous, witty, seductive movie.")
    assert p.label == "positive"
