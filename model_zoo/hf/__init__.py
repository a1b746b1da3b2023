"""Thin wrappers over Hugging Face `transformers`, `datasets` and `evaluate` for fine-tuning
pretrained models.

Importing this package imports those libraries completely, once, in one thread; every module of
`model_zoo` that uses them lives in this package, so none can import them half-way.

Why it matters: `transformers/__init__.py` ends by replacing itself in `sys.modules` with a lazy
module that imports each name (`AutoTokenizer`, ...) on first use. A second thread that imports
`transformers` while the first is still running that file waits for it, and then CPython hands it
the module object it found before waiting: the plain module, which has none of the lazy names
("cannot import name 'AutoTokenizer' from 'transformers'"). Two threads that resolve different
lazy names at once can also meet in a circular import, where Python gives one of them a
half-initialised module. Streamlit runs every browser session in its own thread, so two students
opening Fine-tune and Compare together hit both.

A package's own import runs under Python's import lock for that package: the first thread runs
this file to the end, and any other thread that imports `model_zoo.hf` waits until it has. But
Python (3.11) does not wait for a package that another thread is still importing when asked for a
module *in* it: `from model_zoo.hf.data import ...` on the Fine-tune page, while the app's
background thread is inside this file, ran data.py at once, against half-imported libraries. So
every module here that imports a Hugging Face library first imports this package
(`import model_zoo.hf`, then `# isort: split`): that import waits (tests/test_architecture.py
checks the rule, tests/test_hf_import_race.py the race). The Trainer classes (seconds to import)
are imported at the top of `model_zoo.hf.trainer`, under that module's own import lock.
"""

import datasets
import evaluate  # noqa: F401
import transformers

# Every lazy name the loaders use, resolved here, in this one thread (AutoConfig imports torch).
for _name in (
    "AutoConfig",
    "AutoTokenizer",
    "AutoModelForSequenceClassification",
    "AutoModelForSeq2SeqLM",
    "DataCollatorWithPadding",
    "DataCollatorForSeq2Seq",
    "get_linear_schedule_with_warmup",
):
    getattr(transformers, _name)
del _name


def quiet_libraries() -> None:
    """Silence the libraries' own progress bars and log lines ("Some weights of ... were not
    initialized", "Map: 100%"): the workbench reports progress itself (`on_step`), and says in
    its own words that a new classification head starts untrained."""
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()


quiet_libraries()  # the app's server log and the command line show the workbench's words only
