"""Views as a picture and a sentence about it: a module per family of views, each holding its charts
(altair for the app, matplotlib PNGs for the command line) and their "what to look for" captions
side by side, so that a view's picture and its sentence are read and changed together.

    attention    maps, heads, a token followed, heads picked, a map's change, attention forming in training
    embeddings   the positional encoding, the embedding table in 2-D, nearest neighbours
    weights      histograms, weight norms, parameter counts; shapes, the gradient check, speed
    training     metric curves (live too), per-layer curves, stable versus broken, runs side by side
    decoding     a step's top tokens, the logit lens, a beam's tree
    finetuning   label probabilities, the confusion matrix, before against after, held-out scores
    common       palettes, sizes for a projector, token axes, heat colours, titles

Each chart takes the table of the `model_zoo.views` module of the same name and computes nothing the
table does not already hold beyond what the picture needs; each caption reads the same table and
returns a string (the app shows it with `st.caption`, the tests read it). Nothing here prints.
"""
