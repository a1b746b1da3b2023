"""`.streamlit/config.toml`, read by `make run`, the Dockerfile and the benchmarks alike: every
option in it is one Streamlit knows (a misspelt one is silently ignored), and the two that keep a
class's server fast on two cores are set: no file watcher, no full garbage collection per run."""

from pathlib import Path

import tomllib

CONFIG = Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml"


def test_every_option_is_a_streamlit_option_and_the_server_is_set_for_a_class():
    from streamlit import config

    options = {
        f"{section}.{name}": value
        for section, values in tomllib.loads(CONFIG.read_text()).items()
        for name, value in values.items()
    }
    unknown = [name for name in options if name not in config._config_options_template]
    assert unknown == [], f"not Streamlit options: {unknown}"
    assert options["server.fileWatcherType"] == "none"  # an inotify storm over .venv: 17-62% of a core idle
    assert options["runner.postScriptGC"] is False  # gc.collect(2) after each run: half the server's time
