"""The Fine-tune page's data section through `AppTest`: an upload is read with the library's
parser, its label counts shown, its problems shown as one `st.error` naming the user's file, and
the upload and the column choices survive a visit to another page."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

TIMEOUT = 120  # the page imports torch, transformers and datasets on its first run
APP = Path(__file__).resolve().parent.parent / "streamlit_app.py"
UPLOAD = "upload a CSV / JSON-lines file"


@pytest.fixture(autouse=True)
def app_env(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("WORKBENCH_RAISE", "1")


def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


def upload_page() -> AppTest:
    """The Fine-tune page on the tiny BERT, with "upload a file" picked."""
    from hf_tiny import tiny_bert_dir

    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/finetune.py").run()
    at.selectbox(key="ft_model_choice").set_value("another model: type a hub name or a local folder").run()
    at.text_input(key="ft_model_custom").set_value(str(tiny_bert_dir())).run()
    at.radio(key="ft_data_source").set_value(UPLOAD).run()
    assert not at.exception and not at.error, texts(at.error)
    return at


def test_an_upload_is_read_counted_and_kept_across_pages():
    at = upload_page()
    uploader = at.file_uploader(key="ft_upload")
    assert "at most 50 MB" in uploader.help and "2 to 100 labels" in uploader.help
    rows = "".join(f"review {i}, with a comma;{['neg', 'pos', 'mixed'][i % 3]};{i}\n" for i in range(30))
    content = ("\ufeffreview;stars;id\n" + rows).encode("utf-8")  # Excel's BOM, European semicolons
    uploader.upload("My reviews (1).csv", content, "text/csv").run()
    assert not at.exception and not at.error, texts(at.error)
    assert [at.selectbox(key=k).value for k in ("ft_text_column", "ft_label_column")] == ["review", "stars"]
    caption = " ".join(texts(at.caption))
    assert "30 sentences from file: My reviews (1).csv · labels: mixed (10), neg (10), pos (10)" in caption
    at.selectbox(key="ft_label_column").set_value("id").run()
    assert "30 different labels" not in " ".join(texts(at.error))  # 30 ids, one row each:
    assert "label(s) '0' (1), '1' (1)" in texts(at.error)[0]  # refused for too few examples a class
    at.selectbox(key="ft_label_column").set_value("stars").run()

    at.switch_page("pages/train.py").run()
    at.switch_page("pages/finetune.py").run()
    assert not at.exception and not at.error, texts(at.error)
    assert at.radio(key="ft_data_source").value == UPLOAD
    assert [at.selectbox(key=k).value for k in ("ft_text_column", "ft_label_column")] == ["review", "stars"]
    caption = " ".join(texts(at.caption))
    assert "Using **My reviews (1).csv**, uploaded earlier" in caption
    assert "labels: mixed (10), neg (10), pos (10)" in caption


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("dup cols.csv", b"text,label,label\na,pos,1\nb,neg,2\n", "dup cols.csv has two columns named 'label'"),
        (
            "topics.csv",
            b"text,label\n" + b"".join(b"t%d,topic%d\n" % (i, i % 300) for i in range(600)),
            "topics.csv has 300 different labels; fine-tuning here takes at most 100 classes",
        ),
        ("empty.csv", b"text,label\n", "empty.csv has a header but no rows"),
        ("huge.csv", b"text,label\n" + b"a,b\n" * 12_500_000, "huge.csv is 50.0 MB, over the 50 MB limit"),
        ("broken.jsonl", b'{"text": "a", "label": "x"}\n{"text": \n', "broken.jsonl, line 2 is not JSON"),
    ],
)
def test_a_bad_upload_is_one_error_naming_the_users_file(name, content, message):
    at = upload_page()
    at.file_uploader(key="ft_upload").upload(name, content).run()
    assert not at.exception
    assert message in texts(at.error)[0]
    assert "upload." not in texts(at.error)[0]  # never the name it was stored under


def test_a_latin1_upload_is_read_with_a_note():
    at = upload_page()
    content = "text,label\ncafé,pos\ncrème,neg\nthé,pos\nbrûlée,neg\n".encode("latin-1")
    at.file_uploader(key="ft_upload").upload("accents.csv", content).run()
    assert not at.exception and not at.error, texts(at.error)
    assert "accents.csv is not UTF-8" in texts(at.warning)[0]
    assert "café" in " ".join(texts(at.markdown))  # the sample shown in section 3
