"""The app's teaching text, read from the `content/` folder beside the app: a folder per language,
files a teacher edits and translates without Python. This module reads them and checks their
shape; it knows no Streamlit (the pages draw what it returns) and nothing of the rest of the
library (tests/test_content.py checks that every code pointer names something real).

    content/<language>/concepts/<key>.md   one concept: a TOML header between +++ lines (title,
                                           formula, code), then its words in Markdown
    content/<language>/help.toml           key = "the one-line help of a jargon control"
    content/<language>/ui.toml             key = "one of the app's small words" (labels, headings)
    content/<language>/lesson.toml         the guided lesson: its page's words, and a table per step
    content/<language>/captions.toml       the charts' "what to look for" sentences: a table per family
                                           of views, a template per sentence ({names} filled in by
                                           model_zoo.views.figures with numbers already formatted)

English is the source: the formula and the code pointer of a concept are written once, in its
English file; a translation gives its own title and words (and may give its own formula). Every
language has the same keys as English, and every text with `{placeholders}` the same placeholders.
Files are read once per process: restart the app to see an edit.

    concept("attention", "zh-CN")    a Concept
    help_lines("en")["d_model"]      a str
    lesson("en")["steps"]["loss"]    the lesson's table of one step
    say("attention.rows_sum")        a caption sentence in the current language (use_language sets it)

The current language is a `contextvars.ContextVar`: the app sets it once at the top of each script
run (Streamlit runs a session's script in its own thread, so two students never see each other's).
"""

from __future__ import annotations

import string
import sys
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as a package (pip install tomli)
    import tomli as tomllib

CONTENT_DIR = Path(__file__).resolve().parent.parent / "content"
SOURCE = "en"
LANGUAGES = {"en": "English", "zh-CN": "简体中文"}  # code (as in the link's ?lang=) -> its own name
HEADER_FIELDS = {"title", "formula", "code"}
FENCE = "+++"


_LANGUAGE: ContextVar[str] = ContextVar("workbench_language", default=SOURCE)


class ContentError(ValueError):
    """A content file is missing or has the wrong shape; the message names the file and what to fix."""


@dataclass(frozen=True)
class Concept:
    key: str
    title: str
    words: str  # Markdown, plain words, a few sentences
    formula: str | None = None  # LaTeX for st.latex; `\quad` separates the lines it is drawn in
    code: str = ""  # where model_zoo computes it: "path.py: Name, Other; path2.py: Name"


def language_or_source(language: str | None) -> str:
    """`language` when it is one we have, else English (a link with ?lang=xx still opens)."""
    return language if language in LANGUAGES else SOURCE


def _folder(language: str) -> Path:
    if language not in LANGUAGES:
        raise ContentError(f"unknown language {language!r}: use one of {', '.join(LANGUAGES)}")
    return CONTENT_DIR / language


def _toml(path: Path, text: str | None = None) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8") if text is None else text)
    except FileNotFoundError:
        raise ContentError(f"{path} is missing") from None
    except tomllib.TOMLDecodeError as err:
        raise ContentError(f"{path}: {err} (TOML: key = \"text\"; LaTeX inside '...' quotes)") from None


def read_concept_file(path: Path) -> tuple[dict, str]:
    """A concept file's header (a dict) and its words (Markdown)."""
    text = path.read_text(encoding="utf-8")
    parts = text.split(FENCE + "\n", 2)
    if len(parts) != 3 or parts[0].strip():
        raise ContentError(f"{path}: it must start with a header between two {FENCE} lines")
    header = _toml(path, parts[1])
    unknown = set(header) - HEADER_FIELDS
    if unknown:
        raise ContentError(f"{path}: unknown header field(s) {sorted(unknown)}; use {sorted(HEADER_FIELDS)}")
    if not isinstance(header.get("title"), str) or not header["title"].strip():
        raise ContentError(f'{path}: the header needs a title = "..."')
    words = parts[2].strip()
    if not words:
        raise ContentError(f"{path}: no words under the header")
    return header, words


def concept_keys(language: str = SOURCE) -> list[str]:
    return sorted(p.stem for p in (_folder(language) / "concepts").glob("*.md"))


@cache
def concepts(language: str = SOURCE) -> dict[str, Concept]:
    """Every concept of `language`; formula and code come from English unless the translation gives them."""
    folder = _folder(language) / "concepts"
    source = concepts(SOURCE) if language != SOURCE else {}
    found = {}
    for key in concept_keys(language):
        header, words = read_concept_file(folder / f"{key}.md")
        english = source.get(key)
        found[key] = Concept(
            key,
            header["title"],
            words,
            header.get("formula", english.formula if english else None),
            header.get("code", english.code if english else ""),
        )
    return found


def concept(key: str, language: str = SOURCE) -> Concept:
    """One concept in `language` (English when the translation lacks it)."""
    language = language_or_source(language)
    try:
        return concepts(language)[key]
    except KeyError:
        if language != SOURCE:
            return concept(key, SOURCE)
        raise ContentError(f"no concept {key!r}: write content/{SOURCE}/concepts/{key}.md") from None


def _lines(path: Path) -> dict[str, str]:
    lines = _toml(path)
    wrong = [key for key, text in lines.items() if not isinstance(text, str) or not text.strip()]
    if wrong:
        raise ContentError(f"{path}: {', '.join(wrong)} must each be one non-empty text")
    return lines


@cache
def help_lines(language: str = SOURCE) -> dict[str, str]:
    """The one-line help of each jargon control: key -> text."""
    return _lines(_folder(language) / "help.toml")


@cache
def ui_words(language: str = SOURCE) -> dict[str, str]:
    """The app's small words (an expander's "what is it?", the language switch's label): key -> text."""
    return _lines(_folder(language) / "ui.toml")


@cache
def lesson(language: str = SOURCE) -> dict:
    """The guided lesson's words: the page's own texts, and `steps` (a table per step key)."""
    path = _folder(language) / "lesson.toml"
    table = _toml(path)
    if not isinstance(table.get("steps"), dict) or not table["steps"]:
        raise ContentError(f"{path}: it needs a [steps.<key>] table per step")
    return table


def use_language(language: str | None) -> None:
    """Make `language` (English when unknown) the language of `say` in this thread (and context)."""
    _LANGUAGE.set(language_or_source(language))


def current_language() -> str:
    return _LANGUAGE.get()


@cache
def captions(language: str = SOURCE) -> dict[str, str]:
    """The captions' sentence templates, by "family.key" (captions.toml's tables flattened)."""
    path = _folder(language) / "captions.toml"
    texts = flatten(_toml(path))
    # a separator may be blank (Chinese sentences follow each other without a space); nothing else
    wrong = [
        key
        for key, text in texts.items()
        if not isinstance(text, str) or not (text.strip() or key.endswith("_separator"))
    ]
    if wrong:
        raise ContentError(f"{path}: {', '.join(wrong)} must each be one non-empty text")
    return texts


def say(key: str, /, **values) -> str:
    """The caption sentence `key` in the current language (English where a translation lacks it),
    its `{names}` filled with `values` (format numbers before: the template holds only names)."""
    text = captions(current_language()).get(key)
    if text is None:
        text = captions(SOURCE).get(key)
    if text is None:
        raise ContentError(f"no caption {key!r}: add it to content/{SOURCE}/captions.toml")
    return text.format(**values)


def placeholders(text: str) -> set[str]:
    """The `{names}` a text is formatted with."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(text) if name}


def flatten(value, prefix: str = "") -> dict[str, str]:
    """A nested table as {"steps.loss.options.1": text}: the keys two languages must share."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flatten(item, f"{prefix}{key}.").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in flatten(item, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): value}


def all_texts(language: str) -> dict[str, str]:
    """Every text of a language by a key that names its file and place: what a translation must match."""
    texts = {
        f"concepts.{key}.{field}": getattr(c, field)
        for key, c in concepts(language).items()
        for field in ("title", "words")
    }
    texts |= {f"help.{key}": text for key, text in help_lines(language).items()}
    texts |= {f"ui.{key}": text for key, text in ui_words(language).items()}
    texts |= {f"lesson.{key}": text for key, text in flatten(lesson(language)).items()}
    texts |= {f"captions.{key}": text for key, text in captions(language).items()}
    return texts


def code_pointers(code: str) -> list[tuple[str, list[str]]]:
    """A concept's code line as (module, [names]): "model_zoo/toy/tasks.py: Vocab.decode (why)" gives
    ("model_zoo.toy.tasks", ["Vocab.decode"]); the words in brackets are a comment."""
    pointers = []
    for part in code.split(";"):
        if not part.strip():
            continue
        path, _, names = part.partition(":")
        module = path.strip().removesuffix(".py").replace("/", ".")
        depth, kept = 0, ""
        for char in names:  # drop (comments), nested or not
            depth += char == "("
            kept += char if depth == 0 else ""
            depth -= char == ")" and depth > 0
        pointers.append((module, [n.strip() for n in kept.split(",") if n.strip()]))
    return pointers
