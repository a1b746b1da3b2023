"""One token's journey through a fine-tuned BERT classifier (MiniLM), with the model's own numbers:
word + position + token-type embeddings and their LayerNorm, then in each layer `BertSelfAttention`'s
Q, K, V, the scores, the softmax, the weighted sum, `BertSelfOutput`'s projection and residual +
LayerNorm, `BertIntermediate`'s GELU units and `BertOutput`; at the end the pooler (tanh on the
[CLS] token's state) and the classifier's logits and softmax over the labels.

The stages are `model_zoo.views.journey.Stage`s, built by the same helpers as the scratch model's;
each code pointer is a line of Hugging Face's `modeling_bert.py`, read with `inspect` at run time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from model_zoo.content import say
from model_zoo.hf.inference import FinetunedModel, word_pieces
from model_zoo.views.journey import (
    Journey,
    StageWriter,
    attention_stages,
    code_line,
    feed_forward_stages,
    layer_norm,
    norm_caption,
    rows_caption,
    vocab_caption,
)


def bert_tokens(fm: FinetunedModel, text: str) -> list[str]:
    """The word pieces the model reads, [CLS] and [SEP] included."""
    if not text.strip():
        raise ValueError("The input is empty: type a sentence for the classifier.")
    return word_pieces(fm, text)


def _bert_code() -> dict:
    from transformers.models.bert import modeling_bert as mb

    return {
        "word": code_line(mb.BertEmbeddings.forward, "inputs_embeds = self.word_embeddings(input_ids)"),
        "type": code_line(mb.BertEmbeddings.forward, "self.token_type_embeddings(token_type_ids)"),
        "position": code_line(mb.BertEmbeddings.forward, "self.position_embeddings(position_ids)"),
        "sum": code_line(mb.BertEmbeddings.forward, "embeddings = embeddings + position_embeddings"),
        "norm": code_line(mb.BertEmbeddings.forward, "embeddings = self.LayerNorm(embeddings)"),
        "q": code_line(mb.BertSelfAttention.forward, "query_layer = self.query(hidden_states)"),
        "k": code_line(mb.BertSelfAttention.forward, "key_layer = self.key(hidden_states)"),
        "v": code_line(mb.BertSelfAttention.forward, "value_layer = self.value(hidden_states)"),
        "scores": code_line(mb.eager_attention_forward, "torch.matmul(query, key.transpose(2, 3))"),
        "scaled": code_line(mb.eager_attention_forward, "torch.matmul(query, key.transpose(2, 3))"),
        "mask": code_line(mb.eager_attention_forward, "attn_weights = attn_weights + attention_mask"),
        "softmax": code_line(mb.eager_attention_forward, "nn.functional.softmax(attn_weights, dim=-1)"),
        "weighted": code_line(mb.eager_attention_forward, "torch.matmul(attn_weights, value)"),
        "concat": code_line(mb.BertSelfAttention.forward, "attn_output.reshape(*input_shape, -1)"),
        "output": code_line(mb.BertSelfOutput.forward, "hidden_states = self.dense(hidden_states)"),
        "attn_norm": code_line(mb.BertSelfOutput.forward, "self.LayerNorm(hidden_states + input_tensor)"),
        "hidden": code_line(mb.BertIntermediate.forward, "self.intermediate_act_fn(hidden_states)"),
        "out": code_line(mb.BertOutput.forward, "hidden_states = self.dense(hidden_states)"),
        "ffn_norm": code_line(mb.BertOutput.forward, "self.LayerNorm(hidden_states + input_tensor)"),
        "pooler": code_line(mb.BertPooler.forward, "pooled_output = self.activation(pooled_output)"),
        "logits": code_line(mb.BertForSequenceClassification.forward, "logits = self.classifier(pooled_output)"),
    }


def bert_journey(fm: FinetunedModel, text: str, position: int = 0) -> Journey:
    """Every stage of a fine-tuned BERT classifier on `text`, the word piece at `position` followed.
    Computed from the model's parameters; `model_logits` is the model's own output, (1, labels)."""
    model = fm.model
    if getattr(model.config, "model_type", None) != "bert" or not hasattr(model, "bert"):
        raise ValueError(
            f"The journey follows BERT classifiers (MiniLM); this run's model is a {model.config.model_type}."
        )
    if getattr(model.config, "hidden_act", "gelu") != "gelu":
        raise ValueError(f"The journey knows BERT's GELU; this model uses {model.config.hidden_act}.")
    tokens = bert_tokens(fm, text)
    enc = fm.tokenizer(text, truncation=True, max_length=fm.max_length, return_tensors="pt")
    ids = enc["input_ids"][0].cpu()
    types = enc.get("token_type_ids", torch.zeros_like(enc["input_ids"]))[0].cpu()
    T = ids.numel()
    code = _bert_code()
    bert, cfg = model.bert, model.config
    w = StageWriter(tokens, position)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model_logits = model(**{k: v.to(model.device) for k, v in enc.items()}).logits.float().cpu()
            emb = bert.embeddings
            word = w.add(
                "embed", "Embedding", "word-piece embedding", "e = E_word[token]", emb.word_embeddings.weight[ids].cpu(),
                "rows", code["word"], caption=rows_caption("The word-piece embedding"),
            )  # fmt: skip
            pos = w.add(
                "pe", "Embedding", "learned position embedding", "p = E_position[pos] (learned, not sinusoidal)",
                emb.position_embeddings.weight[:T].cpu(), "rows", code["position"],
                caption=rows_caption("The learned position embedding"),
            )  # fmt: skip
            typ = w.add(
                "type", "Embedding", "token-type (segment) embedding", "s = E_type[segment] (one sentence: all 0)",
                emb.token_type_embeddings.weight[types].cpu(), "rows", code["type"],
                caption=rows_caption("The segment embedding"),
            )  # fmt: skip
            x = w.add(
                "sum", "Embedding", "embeddings summed", "x = e + s + p", word + typ + pos, "rows", code["sum"],
                caption=rows_caption("The summed embedding"),
            )  # fmt: skip
            x = w.add(
                "embed.norm", "Embedding", "LayerNorm of the embeddings", "x = LayerNorm(e + s + p)",
                layer_norm(x, emb.LayerNorm), "rows", code["norm"], caption=norm_caption(False), before=x,
            )  # fmt: skip
            mask = torch.ones(T, T, dtype=torch.bool)  # one sentence, no padding: every key is allowed
            reason = "BERT reads the sentence both ways: no look-ahead mask; only padding would be masked."
            for i, layer in enumerate(bert.encoder.layer):
                block = f"Layer {i}"
                att = layer.attention
                proj = {
                    "q": (att.self.query.weight, att.self.query.bias),
                    "k": (att.self.key.weight, att.self.key.bias),
                    "v": (att.self.value.weight, att.self.value.bias),
                    "o": (att.output.dense.weight, att.output.dense.bias),
                }
                out = attention_stages(
                    w, f"layer.{i}.self", block, "self", x, x, tokens, proj, cfg.num_attention_heads, mask, reason,
                    code,
                )  # fmt: skip
                x = w.add(
                    f"layer.{i}.attn.norm", block, "residual + LayerNorm", "x = LayerNorm(x + attention(x))",
                    layer_norm(x + out, att.output.LayerNorm), "rows", code["attn_norm"], caption=norm_caption(True),
                    before=x + out,
                )  # fmt: skip
                ffn = {
                    "w1": layer.intermediate.dense.weight,
                    "b1": layer.intermediate.dense.bias,
                    "w2": layer.output.dense.weight,
                    "b2": layer.output.dense.bias,
                }
                out = feed_forward_stages(
                    w, f"layer.{i}.ffn", block, x, ffn, "gelu", {"hidden": code["hidden"], "out": code["out"]}
                )
                x = w.add(
                    f"layer.{i}.ffn.norm", block, "residual + LayerNorm", "x = LayerNorm(x + ffn(x))",
                    layer_norm(x + out, layer.output.LayerNorm), "rows", code["ffn_norm"], caption=norm_caption(True),
                    before=x + out,
                )  # fmt: skip
            labels = list(fm.label_names)
            cls = x[:1]  # (1, D): the pooler reads the [CLS] token only
            pooled = w.add(
                "pooler", "Output", "pooler: tanh(W [CLS] + b)", "pooled = tanh(x[CLS] W_p + b_p)",
                torch.tanh(F.linear(cls, bert.pooler.dense.weight, bert.pooler.dense.bias)), "rows", code["pooler"],
                rows=[tokens[0]], caption=_pooler_caption(tokens[position]), at=0,
            )  # fmt: skip
            logits = w.add(
                "logits", "Output", "classifier logits over the labels", "logits = pooled W_c + b_c",
                F.linear(pooled, model.classifier.weight, model.classifier.bias), "vocab", code["logits"],
                rows=[tokens[0]], cols=labels, caption=_cls(vocab_caption("logits"), tokens[position]), at=0,
            )  # fmt: skip
            w.add(
                "probs", "Output", "softmax over the labels", "p = softmax(logits)", logits.softmax(dim=-1), "vocab",
                code["logits"], rows=[tokens[0]], cols=labels, caption=_cls(vocab_caption("probs"), tokens[position]), at=0,
            )  # fmt: skip
    finally:
        model.train(was_training)
    return Journey(w.stages, tokens, position, "bert", model_logits[0])


def _cls(caption, followed: str):
    """A caption of the [CLS] row, saying so when another token is followed."""
    note = "" if followed == "[CLS]" else say("journey.bert.cls_note")
    return lambda stage: caption(stage) + note


def _pooler_caption(followed: str):
    def caption(stage) -> str:
        row = stage.tensor[0]
        return say("journey.bert.pooler", low=f"{float(row.min()):+.2f}", high=f"{float(row.max()):+.2f}") + (
            "" if followed == "[CLS]" else say("journey.bert.followed", token=followed)
        )

    return caption
