"""`check-content`: a teacher who edits or translates the teaching text (`content/<language>/`)
checks it before the class sees it.

    python -m model_zoo check-content

It reads every file the app reads, and reports a key that one language has and English lacks (or
the reverse), a translation whose `{placeholders}` differ from English's (the app would fail to fill
it), and a concept's code pointer that names a module or a function `model_zoo` does not have.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import inspect

from model_zoo import content
from model_zoo.commands import say


def _names_in_class_init(cls: type) -> set[str]:
    """The attributes a class's __init__ assigns on `self` (an nn.Module's sub-modules, such as
    `Transformer.generator`, exist only on an instance)."""
    tree = ast.parse(inspect.getsource(cls))
    return {
        t.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for t in node.targets
        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
    }


def resolves(module_name: str, dotted: str) -> bool:
    """Whether `module_name` has `dotted` (a name, or Class.attribute)."""
    obj = importlib.import_module(module_name)
    for part in dotted.split("."):
        if not hasattr(obj, part):
            return inspect.isclass(obj) and part in _names_in_class_init(obj)
        obj = getattr(obj, part)
    return True


def code_pointer_problems(language: str) -> list[str]:
    wrong = []
    for key, concept in content.concepts(language).items():
        for module_name, names in content.code_pointers(concept.code):
            if not module_name.startswith("model_zoo.") or importlib.util.find_spec(module_name) is None:
                wrong.append(f"{language} concept {key}: no module {module_name}")
                continue
            wrong += [f"{language} concept {key}: {module_name} has no {name}" for name in names if not resolves(module_name, name)]  # fmt: skip
    return wrong


def translation_problems(language: str) -> list[str]:
    english, other = content.all_texts(content.SOURCE), content.all_texts(language)
    wrong = [f"{language}: {key} is missing (English has it)" for key in sorted(set(english) - set(other))]
    wrong += [f"{language}: {key} is not in English" for key in sorted(set(other) - set(english))]
    for key, text in other.items():
        if key in english and content.placeholders(text) != content.placeholders(english[key]):
            wrong.append(
                f"{language}: {key} fills {sorted(content.placeholders(text))}, English "
                f"{sorted(content.placeholders(english[key]))}"
            )
    return wrong


def content_problems() -> list[str]:
    """Everything wrong with the teaching text, in every language (an empty list: all is well)."""
    problems = code_pointer_problems(content.SOURCE)
    for language in content.LANGUAGES:
        if language != content.SOURCE:
            problems += translation_problems(language)
    return problems


def cmd_check_content(args: argparse.Namespace) -> int:
    try:
        problems = content_problems()
    except content.ContentError as err:  # a file the app could not read at all
        problems = [str(err)]
    for problem in problems:
        say(problem)
    if problems:
        say(f"{len(problems)} problem(s) in {content.CONTENT_DIR}: fix them before the class opens the app")
        return 1
    texts = len(content.all_texts(content.SOURCE))
    say(f"content is complete: {texts} texts in {len(content.LANGUAGES)} languages ({', '.join(content.LANGUAGES)})")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "check-content",
        help="check the teaching text (content/): every language complete, every code pointer real",
    )
    p.set_defaults(func=cmd_check_content)
