"""Transformer Workbench: `streamlit run streamlit_app.py`. Declares the pages; each is UI only."""

import streamlit as st

st.set_page_config(page_title="Transformer Workbench", page_icon="🔧", layout="wide")
st.title("Transformer Workbench")
st.write("Build a Transformer from scratch, train it, look inside it, then fine-tune a pretrained model.")
