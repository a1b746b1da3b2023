"""A page keeps its choices across visits (`pages.ui.widgets.keep_choices(prefix)` sets the kept
values back) — but Streamlit refuses a value set on a button, a download, an upload or a chart's
selection, and the page then fails on the student's next visit (a Train page with the label
smoothing pair's button did: "st.session_state['train_ls_pair'] is read-only"). Every such widget
on a page that keeps choices either has a key outside the kept prefix or one of the suffixes
keep_choices leaves alone."""

import ast
from pathlib import Path

from pages.ui.widgets import _NOT_KEPT

PAGES = Path(__file__).resolve().parent.parent / "pages"
UNSETTABLE = {"button", "download_button", "form_submit_button", "file_uploader", "altair_chart", "vega_lite_chart"}


def kept_prefixes(tree: ast.AST) -> list[str]:
    return [
        node.args[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", "")) == "keep_choices"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ]


def unsettable_keys(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, key) of every button-like widget whose key is a string or starts with a literal."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in UNSETTABLE:
            for keyword in node.keywords:
                if keyword.arg != "key":
                    continue
                if isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, str):
                    found.append((node.lineno, keyword.value.value))
                elif isinstance(keyword.value, ast.JoinedStr):  # f"..." : its literal parts, joined with a mark
                    text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in keyword.value.values)
                    found.append((node.lineno, text))
    return found


def test_no_button_download_upload_or_chart_selection_is_set_back_by_keep_choices():
    wrong = []
    for page in sorted(PAGES.rglob("*.py")):
        tree = ast.parse(page.read_text(encoding="utf-8"))
        for prefix in kept_prefixes(tree):
            for line, key in unsettable_keys(tree):
                if key.startswith(prefix) and not key.endswith(_NOT_KEPT):
                    wrong.append(f"{page.name}:{line}: key {key!r} starts with {prefix!r}")
    assert not wrong, "keep_choices would set these back, which Streamlit refuses: " + "; ".join(wrong)


def test_the_check_finds_a_kept_button():
    tree = ast.parse(
        'keep_choices("train_")\nst.button("Go", key="train_pair")\nst.button("Go", key="train_go_start")\n'
    )
    assert [
        k for _, k in unsettable_keys(tree) if k.startswith(kept_prefixes(tree)[0]) and not k.endswith(_NOT_KEPT)
    ] == ["train_pair"]
