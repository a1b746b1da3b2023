"""The teaching text is content (`content/<language>/`, read by `model_zoo.content`): every concept and
help line a page names has its text in every language, every code pointer names something real in
`model_zoo`, every language has the keys and placeholders of English, and the sidebar's language
switch (kept in the link as `?lang=`) changes what the pages say."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from model_zoo import content
from model_zoo.commands.content import code_pointer_problems, resolves

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "pages").glob("*.py"))
APP = ROOT / "streamlit_app.py"
TIMEOUT = 120
TRANSLATIONS = [code for code in content.LANGUAGES if code != content.SOURCE]


def _constants(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def concepts_named_by_pages() -> dict[str, str]:
    """{concept key: where} for every `explain("key")`/`show("key")` in pages/ (also through a loop
    variable, `for key in ("a", "b"): explain(key)`) and every lesson `Step(key, page, reveal, concept)`."""
    named = {}
    for path in PAGES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        loops = {}  # a loop variable -> the strings it runs over
        for node in ast.walk(tree):
            if isinstance(node, ast.For) and isinstance(node.target, ast.Name):
                loops[node.target.id] = _constants(node.iter)
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name) or not node.args:
                continue
            if node.func.id in ("explain", "show"):
                arg = node.args[0]
                keys = loops.get(arg.id, []) if isinstance(arg, ast.Name) else _constants(arg)
            elif node.func.id == "Step" and len(node.args) >= 4:
                keys = _constants(node.args[3])
            else:
                continue
            named |= {key: f"{path.name}:{node.lineno}" for key in keys}
    return named


def help_keys_named_by_pages() -> dict[str, str]:
    """{help key: where} for every `HELP["key"]` in pages/."""
    named = {}
    for path in PAGES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "HELP":
                named |= {key: f"{path.name}:{node.lineno}" for key in _constants(node.slice)}
    return named


def test_the_pages_are_found_to_name_concepts_and_help_lines():
    # the AST search itself works: the pages name a good part of the course
    assert len(concepts_named_by_pages()) >= 30
    assert {"attention", "feed_forward", "greedy"} <= set(concepts_named_by_pages())
    assert len(help_keys_named_by_pages()) >= 40


@pytest.mark.parametrize("language", list(content.LANGUAGES))
def test_every_concept_a_page_names_has_its_text(language):
    have = content.concepts(language)
    missing = [f"{key} ({where})" for key, where in concepts_named_by_pages().items() if key not in have]
    assert not missing, f"no content/{language}/concepts/<key>.md for: {', '.join(missing)}"
    for key in concepts_named_by_pages():
        assert have[key].title.strip() and have[key].words.strip()


@pytest.mark.parametrize("language", list(content.LANGUAGES))
def test_every_help_line_a_page_uses_has_its_text(language):
    have = content.help_lines(language)
    missing = [f"{key} ({where})" for key, where in help_keys_named_by_pages().items() if key not in have]
    assert not missing, f"content/{language}/help.toml lacks: {', '.join(missing)}"


@pytest.mark.parametrize("language", list(content.LANGUAGES))
def test_every_code_pointer_names_a_module_and_a_name_that_exist_in_model_zoo(language):
    wrong = code_pointer_problems(language)  # the check `python -m model_zoo check-content` runs
    assert not wrong, "\n".join(wrong)


def test_a_code_pointer_to_a_function_that_is_gone_is_found():
    # the check above bites: a renamed function and a moved module are both reported
    assert not resolves("model_zoo.scratch.attention", "scaled_dot_product_attention_v2")
    assert resolves("model_zoo.scratch.transformer", "Transformer.generator")  # a sub-module made in __init__
    assert importlib.util.find_spec("model_zoo.scratch.attentions") is None
    assert content.code_pointers("model_zoo/toy/tasks.py: Vocab.decode (ids to text); model_zoo/hf/data.py: a, b") == [
        ("model_zoo.toy.tasks", ["Vocab.decode"]),
        ("model_zoo.hf.data", ["a", "b"]),
    ]


@pytest.mark.parametrize("language", TRANSLATIONS)
def test_every_language_has_the_same_keys_as_english(language):
    english, other = content.all_texts(content.SOURCE), content.all_texts(language)
    only_english = sorted(set(english) - set(other))
    only_other = sorted(set(other) - set(english))
    assert not only_english, f"{language} lacks: {', '.join(only_english)}"
    assert not only_other, f"{language} has keys English lacks: {', '.join(only_other)}"


@pytest.mark.parametrize("language", TRANSLATIONS)
def test_every_translation_keeps_the_placeholders_of_english(language):
    english, other = content.all_texts(content.SOURCE), content.all_texts(language)
    wrong = [
        f"{key}: {sorted(content.placeholders(english[key]))} in English, {sorted(content.placeholders(text))} here"
        for key, text in other.items()
        if key in english and content.placeholders(text) != content.placeholders(english[key])
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("language", TRANSLATIONS)
def test_a_translation_is_written_in_its_language_and_keeps_formula_and_code(language):
    english = content.concepts(content.SOURCE)
    for key, concept in content.concepts(language).items():
        assert concept.words != english[key].words, f"{key} is not translated"
        assert (concept.formula, concept.code) == (english[key].formula, english[key].code)
    assert content.help_lines(language)["d_model"] != content.help_lines(content.SOURCE)["d_model"]


def test_a_concept_file_without_its_header_is_refused_with_its_name(tmp_path):
    broken = tmp_path / "attention.md"
    broken.write_text("Every token asks a question.\n", encoding="utf-8")
    with pytest.raises(content.ContentError, match="attention.md.*header"):
        content.read_concept_file(broken)
    broken.write_text('+++\ntitle = "Attention"\nformla = "x"\n+++\nWords.\n', encoding="utf-8")
    with pytest.raises(content.ContentError, match="formla"):
        content.read_concept_file(broken)
    broken.write_text('+++\ntitle = "Attention\n+++\nWords.\n', encoding="utf-8")
    with pytest.raises(content.ContentError, match="attention.md"):
        content.read_concept_file(broken)


def test_an_unknown_language_in_a_link_reads_as_english():
    assert content.language_or_source("xx") == "en"
    assert content.concept("attention", "xx") == content.concept("attention", "en")


# -- the switch, in the app ----------------------------------------------------------------------
@pytest.fixture
def app_env(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("WORKBENCH_RAISE", "1")


def open_page(page: str, lang: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if lang:
        at.query_params["lang"] = lang
    at.run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


# AppTest draws the sidebar (where the switch is) only on its first run of a session, on this
# Streamlit (1.67) and before this change too; so the switch's choice is set as the widget's state
# before the first run, as a student's earlier choice is, and the browser test looks at the rest.
def opened(page: str, *, link: str | None = None, chosen: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if link:
        at.query_params["lang"] = link
    if chosen:
        at.session_state["workbench_language"] = chosen
    at.run()
    if page != "pages/home.py":
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.usefixtures("app_env")
def test_a_link_with_lang_opens_the_lesson_in_chinese():
    chinese = content.lesson("zh-CN")
    at = opened("pages/lesson.py", link="zh-CN")
    assert [t.value for t in at.title] == [chinese["title"]]
    assert at.radio(key="lesson_answer_0").options == chinese["steps"]["parameters"]["options"]
    goal = chinese["goal"].format(goal=chinese["steps"]["parameters"]["goal"])
    assert goal in [m.value for m in at.markdown]


@pytest.mark.usefixtures("app_env")
def test_the_switch_shows_the_links_language_and_writes_its_choice_into_the_link():
    at = opened("pages/home.py", link="zh-CN")
    assert at.selectbox(key="workbench_language").value == "zh-CN"
    assert at.query_params["lang"] == "zh-CN"
    at = opened("pages/home.py", link="zh-CN", chosen="en")  # switched back: the link forgets it
    assert at.selectbox(key="workbench_language").value == "en"
    assert "lang" not in at.query_params
    at = opened("pages/home.py", chosen="zh-CN")
    assert at.query_params["lang"] == "zh-CN"


@pytest.mark.usefixtures("app_env")
def test_after_the_switch_the_help_lines_and_concepts_of_a_page_are_chinese():
    at = opened("pages/build.py", chosen="zh-CN")
    assert at.number_input(key="build_d_model").help == content.help_lines("zh-CN")["d_model"]
    titles = [e.label for e in at.expander]
    assert any(content.concept("attention", "zh-CN").title in label for label in titles), titles
    assert not any(content.concept("attention", "en").title in label for label in titles), titles


@pytest.mark.usefixtures("app_env")
def test_an_answer_is_judged_and_counted_in_the_language_of_the_page():
    at = opened("pages/lesson.py", chosen="zh-CN")
    chinese = content.lesson("zh-CN")
    right = chinese["steps"]["parameters"]["options"][2]
    at.radio(key="lesson_answer_0").set_value(right).run()
    at.button(key="lesson_reveal_0").click().run()
    assert not at.exception, at.exception
    revealed = at.success[0].value
    assert chinese["you_said_right"].format(given=right) in revealed, revealed
    assert chinese["steps"]["parameters"]["whose_default"] in revealed
    assert chinese["progress"].format(done=1, total=10) in at.get("progress")[0].proto.text
    expanders = [e.label for e in at.expander]
    assert any(content.concept("feed_forward", "zh-CN").title in label for label in expanders), expanders


def _content_at(folder, monkeypatch):
    """The app's content read from `folder` (a copy a test may break)."""
    monkeypatch.setattr(content, "CONTENT_DIR", folder)
    for reader in (content.concepts, content.help_lines, content.ui_words, content.lesson, content.captions):
        reader.cache_clear()


def test_check_content_reports_a_missing_translation_and_a_changed_placeholder(tmp_path, monkeypatch, capsys):
    import shutil

    from model_zoo.cli import main

    shutil.copytree(content.CONTENT_DIR, tmp_path / "content")
    (tmp_path / "content" / "zh-CN" / "concepts" / "attention.md").unlink()
    captions = tmp_path / "content" / "zh-CN" / "captions.toml"
    text = captions.read_text(encoding="utf-8")
    name = sorted(content.placeholders(text))[0]
    captions.write_text(text.replace("{" + name + "}", "{oops}", 1), encoding="utf-8")
    _content_at(tmp_path / "content", monkeypatch)
    try:
        assert main(["check-content"]) == 1
        out = capsys.readouterr().out
        assert "zh-CN: concepts.attention.title is missing (English has it)" in out
        assert "'oops'" in out and "problem(s)" in out
    finally:
        for reader in (content.concepts, content.help_lines, content.ui_words, content.lesson, content.captions):
            reader.cache_clear()


def test_check_content_passes_on_the_shipped_text(capsys):
    from model_zoo.cli import main

    assert main(["check-content"]) == 0
    assert "content is complete" in capsys.readouterr().out
