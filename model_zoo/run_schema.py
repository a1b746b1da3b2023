"""The shape of every JSON file of a run folder, checked in one place.

A file that parses can still be the wrong shape (`run.json` = `[1]`, `history.json` = `[1, 2]`, a
`comparison.json` without its texts): whatever opens it would crash, or worse, answer wrongly. So the
listing (`run_folder.check_files`) and every loader check each file against its schema here, and a
damaged run is unreadable with the reason ("history.json: entry 0 is not an object"), never a page
crash. Plain Python checks; the file names are `model_zoo.run_folder`'s (this module names them as
strings to stay a leaf that `run_folder` imports).

`check_json(name, value, kind)` checks one parsed file; `check_finetune_weights(config, labels,
tensors)` checks a fine-tuning run's config and labels against its weights' shapes (read from the
safetensors header, no tensor loaded).
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Real


class SchemaError(ValueError):
    """A file of a run parses but does not have the shape its readers need."""


# -- small checks, each naming where the value sits ---------------------------------------------
def _fail(where: str, what: str) -> None:
    raise SchemaError(f"{where} {what}".strip())


def _missing(value, where: str) -> None:
    if value is None:
        _fail(where, "is missing (or null)")


def _object(value, where: str) -> dict:
    _missing(value, where)
    if not isinstance(value, dict):
        _fail(where, f"is not a JSON object (it is {_kind(value)})")
    return value


def _list(value, where: str, of: Callable | None = None) -> list:
    _missing(value, where)
    if not isinstance(value, list):
        _fail(where, f"is not a list (it is {_kind(value)})")
    if of is not None:
        for i, item in enumerate(value):
            of(item, f"{where}[{i}]")
    return value


def _int(value, where: str, minimum: int | None = 0) -> int:
    _missing(value, where)
    if isinstance(value, bool) or not isinstance(value, int) or (minimum is not None and value < minimum):
        least = "" if minimum is None else f" of at least {minimum}"
        _fail(where, f"must be a whole number{least}, not {value!r}"[:200])
    return value


def _number(value, where: str) -> float:
    _missing(value, where)
    if isinstance(value, bool) or not isinstance(value, Real):
        _fail(where, f"must be a number, not {_kind(value)}")
    return value


def _text(value, where: str) -> str:
    _missing(value, where)
    if not isinstance(value, str):
        _fail(where, f"must be text, not {_kind(value)}")
    return value


def _optional(check: Callable, value, where: str):
    return None if value is None else check(value, where)


def _kind(value) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}.get(
        type(value), "a number"
    )


def _numbers(value, where: str) -> dict:
    """An object of metric name → number (e.g. {"accuracy": 0.8})."""
    for key, number in _object(value, where).items():
        _number(number, f"{where}[{key!r}]")
    return value


# -- one schema a file ------------------------------------------------------------------------------
def _run(value, kind: str) -> None:
    info = _object(value, "")
    if info.get("kind") not in (None, "scratch", "finetune"):
        _fail("'kind'", f"must be 'scratch' or 'finetune', not {info['kind']!r}"[:200])
    for key in ("step", "steps"):
        if key in info:
            _int(info[key], f"{key!r}")
    if "final_metrics" in info:
        _numbers(info["final_metrics"], "'final_metrics'")
    task = info.get("task")
    if kind == "scratch":
        if task is not None:
            _text(_object(task, "'task'").get("name"), "'task' name")
    else:
        _optional(_text, task, "'task'")
        for key in ("model", "dataset", "loop"):
            _optional(_text, info.get(key), f"{key!r}")
        if "labels" in info:
            _list(info["labels"], "'labels'", _text)


def _history(value, kind: str) -> None:
    """Each entry a step's measurements, as the charts read them: numbers (a per-layer group of
    numbers), a "kind" word, or null."""

    def entry(item, where: str) -> None:
        _int(_object(item, where).get("step"), f"{where} 'step'")
        if kind == "finetune":
            _number(item.get("epoch"), f"{where} 'epoch'")
        for key, measured in item.items():
            if isinstance(measured, dict):
                for layer, number in measured.items():
                    if number is not None:
                        _number(number, f"{where} {key!r} {layer!r}")
            elif measured is not None and key != "kind":
                _number(measured, f"{where} {key!r}")

    if kind == "scratch":
        _list(value, "", entry)
        return
    history = _object(value, "")
    for part in ("train", "eval"):
        _list(history.get(part), f"{part!r}", entry)


def _labels(value, kind: str) -> None:
    labels = _list(value, "", _text)
    if len(labels) < 2:
        _fail("", "must list at least two labels")
    if len(set(labels)) != len(labels):
        _fail("", "lists a label twice")


def _vocab(value, kind: str) -> None:
    _list(_object(value, "").get("tokens"), "'tokens'", _text)


def _train_config(value, kind: str) -> None:
    _object(value, "")  # its values: `TrainConfig.from_dict` (model_zoo.toy.runs.check_run)


def _finetune_config(value, kind: str) -> None:
    config = _object(value, "")
    for key in ("model", "dataset"):
        _optional(_text, config.get(key), f"{key!r}")
    for key in ("seed", "epochs", "batch_size", "max_length"):
        if key in config:
            _int(config[key], f"{key!r}", minimum=None if key == "seed" else 1)
    if config.get("max_examples") is not None:
        _int(config["max_examples"], "'max_examples'", 1)
    if "test_size" in config and not 0 < _number(config["test_size"], "'test_size'") < 1:
        _fail("'test_size'", f"must be between 0 and 1, not {config['test_size']!r}")


def _metrics(value, kind: str) -> None:
    metrics = _object(value, "")
    _numbers(metrics.get("before", {}), "'before'")
    for key in ("accuracy", "macro_f1"):  # what every reader of a finished run shows
        _number(_numbers(metrics.get("after"), "'after'").get(key), f"'after' {key!r}")
    if "test_examples" in metrics:
        _int(metrics["test_examples"], "'test_examples'")


def _comparison(value, kind: str) -> None:
    """What the Compare page and `compare.outcome` read: texts, their labels, both sides'
    predictions and confusion, the changed examples and the probe sentences."""
    data = _object(value, "")
    names = _list(data.get("label_names"), "'label_names'", _text)
    if len(names) < 2:
        _fail("'label_names'", "must list at least two labels")
    texts = _list(data.get("texts"), "'texts'", _text)
    references = _list(data.get("references"), "'references'", _int)
    if len(references) != len(texts):
        _fail("'references'", f"has {len(references)} labels for {len(texts)} texts")
    if any(r >= len(names) for r in references):
        _fail("'references'", f"has a label index outside the {len(names)} labels")
    probes = _list(data.get("probe_sentences", []), "'probe_sentences'", _text)
    for role in ("before", "after"):
        side = _object(data.get(role, {}) if role == "before" else data.get(role), f"{role!r}")
        for key in ("accuracy", "macro_f1"):
            if key in side or role == "after":
                _number(side.get(key), f"{role!r} {key!r}")
        if "predictions" in side or role == "after":
            predictions = _list(side.get("predictions"), f"{role!r} 'predictions'", lambda v, w: _int(v, w, -1))
            if len(predictions) != len(texts) or any(p >= len(names) for p in predictions):
                _fail(f"{role!r} 'predictions'", f"do not match the {len(texts)} texts and {len(names)} labels")
        if "confusion" in side:
            rows = _list(side["confusion"], f"{role!r} 'confusion'", lambda v, w: _list(v, w, _int))
            if len(rows) != len(names) or any(len(row) != len(names) for row in rows):
                _fail(f"{role!r} 'confusion'", f"must be {len(names)} × {len(names)}")
        if "probes" in side:

            def probe(item, where: str) -> None:
                _text(_object(item, where).get("label"), f"{where} 'label'")
                _numbers(item.get("probabilities"), f"{where} 'probabilities'")

            if len(_list(side["probes"], f"{role!r} 'probes'", probe)) != len(probes):
                _fail(f"{role!r} 'probes'", f"must have one entry for each of the {len(probes)} probe sentences")

    def changed(item, where: str) -> None:
        for key in ("text", "label", "before", "after"):
            _text(_object(item, where).get(key), f"{where} {key!r}")
        if not isinstance(item.get("fixed"), bool):
            _fail(f"{where} 'fixed'", "must be true or false")

    _list(data.get("changed", []), "'changed'", changed)


def _trainer_state(value, kind: str) -> None:
    state = _object(value, "")
    _int(state.get("step"), "'step'")
    _list(state.get("param_groups"), "'param_groups'", _object)
    _object(state.get("scheduler"), "'scheduler'")


def _config(value, kind: str) -> None:
    _object(value, "")  # its values: the scratch config (toy.runs.check_run), the weights (below)


SCHEMAS: dict[str, Callable[[object, str], None]] = {
    "run.json": _run,
    "history.json": _history,
    "labels.json": _labels,
    "vocab.json": _vocab,
    "train_config.json": _train_config,
    "finetune_config.json": _finetune_config,
    "metrics.json": _metrics,
    "comparison.json": _comparison,
    "trainer_state.json": _trainer_state,
    "config.json": _config,
}


def check_json(name: str, value, kind: str) -> None:
    """Raise SchemaError ("history.json: 'train' must be a list, not a number") when `value`, the
    parsed file `name` of a run of `kind` ("scratch" or "finetune"), is not the shape its readers
    need. Files without a schema (a tokenizer's) only have to parse."""
    check = SCHEMAS.get(name)
    if check is None:
        return
    try:
        check(value, kind)
    except SchemaError as err:
        raise SchemaError(f"{name} {err}") from None


# -- a fine-tuning run's config and labels against its weights ---------------------------------------
_EMBEDDINGS = ("word_embeddings.weight", "shared.weight", "embed_tokens.weight")
_HEADS = ("classifier.weight", "classifier.out_proj.weight", "score.weight")  # BERT, RoBERTa, others


def check_finetune_weights(config: dict, labels: list, tensors: dict) -> None:
    """Raise SchemaError when config.json or labels.json disagree with the weights' shapes (`tensors`:
    `run_folder.safetensors_header`): a saved run must load exactly as it was saved, never with a
    part re-initialised at random."""
    width = next((config[k] for k in ("hidden_size", "d_model", "dim") if isinstance(config.get(k), int)), None)
    embeddings = next((t for name, t in tensors.items() if name.endswith(_EMBEDDINGS)), None)
    if width is not None and embeddings is not None and list(embeddings["shape"])[1:] != [width]:
        raise SchemaError(
            f"config.json says the model is {width} wide but the weights' embeddings are "
            f"{embeddings['shape'][-1]}: the config and the weights don't belong together"
        )
    vocab = config.get("vocab_size")
    if isinstance(vocab, int) and embeddings is not None and embeddings["shape"][0] != vocab:
        raise SchemaError(
            f"config.json says the vocabulary has {vocab} tokens but the weights' embeddings have "
            f"{embeddings['shape'][0]}: the config and the weights don't belong together"
        )
    if config.get("is_encoder_decoder"):
        return  # a text-to-text run writes its labels as words: no head to match
    id2label = config.get("id2label")
    if isinstance(id2label, dict) and len(id2label) != len(labels):
        raise SchemaError(
            f"labels.json lists {len(labels)} labels but config.json's head has {len(id2label)}: "
            "the labels and the model don't belong together"
        )
    head = next((t for name, t in tensors.items() if name.endswith(_HEADS)), None)
    if head is not None and head["shape"][0] != len(labels):
        raise SchemaError(
            f"labels.json lists {len(labels)} labels but the weights' classification head has "
            f"{head['shape'][0]} outputs: the labels and the model don't belong together"
        )
