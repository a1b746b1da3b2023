"""Start here: what the workbench is and the path through its pages."""

import streamlit as st

st.title("Transformer Workbench")
st.write(
    "Build the Transformer of *Attention Is All You Need* from scratch, train it on small tasks, look "
    "inside it while it works, then fine-tune a pretrained model and compare before with after. "
    "Everything runs on a laptop CPU, offline."
)

st.info(
    "**New here? Take the guided lesson**: ten steps from Build to Compare. At each step you predict what you "
    "will see, then the app shows it, computed from *your own* trained model.",
    icon=":material/school:",
)
st.page_link("pages/lesson.py", label="Start the guided lesson", icon=":material/school:")

st.subheader("How to read the pages")
st.markdown(
    """
- Under every chart a **What to look for** line says what this chart shows *for your data*: the pattern an
  attention map has, where a loss curve stalls and why, how much a picture can be trusted.
- Every :material/school: **what is it?** box explains one idea of the paper: in plain words, the formula, and the
  file and function of `model_zoo` that computes it.
- Hover the :material/help: next to a setting to learn what it is and what changes if you move it.
"""
)

st.subheader("The path")
st.markdown(
    """
1. **Build**: choose the architecture (width, heads, layers, pre- or post-norm). See how many
   parameters each part holds, how the shape of an input changes at every stage, and check that the
   scratch model computes exactly what PyTorch's `nn.Transformer` computes.
2. **Train**: teach it a toy task (copy, reverse, sort) or to repeat English sentences. Watch loss,
   accuracy, learning rate and gradient norm live; stop it any time; the run is saved and listed in
   the sidebar. Then decode your own input, greedy or with beam search.
3. **Step-through decoding**: type a source and press *Next token*: the most likely next tokens, the
   one chosen and where the decoder looked in the source, one step at a time.
4. **Inspect**: attention maps by kind, layer and head; follow one token through every layer;
   positional encoding; embeddings; weights; a gradient check; how training went, and why a broken
   recipe fails.
5. **Fine-tune**: take a pretrained model (MiniLM, shipped offline) and teach it the sentiment of
   movie reviews, or your own labelled file.
6. **Compare**: the model before and after fine-tuning; two of your runs side by side; the scratch
   model against `nn.Transformer`.
"""
)
st.caption("In a hurry? **Train** → copy task → *Start training*: it learns in well under a minute.")
st.page_link("pages/build.py", label="Go to Build", icon=":material/construction:")
st.page_link("pages/train.py", label="Go to Train", icon=":material/fitness_center:")
