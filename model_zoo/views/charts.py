"""Charts of the tables `model_zoo.views` makes: altair specs for the app
(`st.altair_chart(chart)`) and matplotlib PNGs for the CLI.

Each `*_chart` function takes the DataFrame of the `model_zoo.views` function it names and returns
an altair chart; nothing is computed here that the table does not already hold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import altair as alt
import pandas as pd

from model_zoo.views.attention import KIND_TITLES

HEATMAP_SCHEME = "blues"  # one hue, light = 0: attention weights are probabilities
DIVERGING_SCHEME = "redblue"  # positional encoding values run from -1 to 1
RECIPE_COLORS = {"stable": "#1f77b4", "broken": "#d62728"}


# -- attention ----------------------------------------------------------------------------------
def _attention_encodings(frame: pd.DataFrame) -> dict:
    queries = _ordered(frame, "query", "query_pos")
    keys = _ordered(frame, "key", "key_pos")
    return dict(
        x=alt.X("key:N", sort=keys, title="key (attended to)", axis=alt.Axis(labelAngle=-45)),
        y=alt.Y("query:N", sort=queries, title="query (attending)"),
        color=alt.Color("weight:Q", scale=alt.Scale(scheme=HEATMAP_SCHEME, domain=[0, 1]), title="weight"),
        tooltip=["query_token:N", "key_token:N", "layer:O", "head:N", alt.Tooltip("weight:Q", format=".3f")],
    )


def attention_heatmap(
    frame: pd.DataFrame, title: str | None = None, cell: int = 28, annotate: bool | None = None
) -> alt.Chart | alt.LayerChart:
    """One attention map (from `attention.attention_map`): keys across, queries down, weight as
    colour; each cell also shows its weight when the map is small enough to read (≤ 12 × 12)."""
    _require(frame, ["query", "query_pos", "key", "key_pos", "weight"], "attention.attention_map")
    n_q, n_k = frame["query"].nunique(), frame["key"].nunique()
    size = dict(width=cell * n_k, height=cell * n_q, title=title or _attention_title(frame))
    base = alt.Chart(frame)
    heat = base.mark_rect().encode(**_attention_encodings(frame))
    if annotate is None:
        annotate = n_q <= 12 and n_k <= 12
    if not annotate:
        return heat.properties(**size)
    text = base.mark_text(fontSize=9).encode(
        x=alt.X("key:N", sort=_ordered(frame, "key", "key_pos")),
        y=alt.Y("query:N", sort=_ordered(frame, "query", "query_pos")),
        text=alt.Text("weight:Q", format=".2f"),
        color=alt.condition("datum.weight > 0.5", alt.value("white"), alt.value("black")),
    )
    return (heat + text).properties(**size)


def attention_heads_chart(frame: pd.DataFrame, columns: int = 4, cell: int = 18) -> alt.FacetChart:
    """Every head of a layer (from `attention.attention_heads`) as a grid of small heatmaps."""
    _require(frame, ["head", "query", "key", "weight"], "attention.attention_heads")
    n_q, n_k = frame["query"].nunique(), frame["key"].nunique()
    chart = (
        alt.Chart(frame)
        .mark_rect()
        .encode(**_attention_encodings(frame))
        .properties(width=cell * n_k, height=cell * n_q)
        .facet(facet=alt.Facet("head:O", title="head"), columns=columns)
        .properties(title=_attention_title(frame, heads=True))
    )
    return chart


def follow_token_chart(frame: pd.DataFrame, cell: int = 24) -> alt.Chart:
    """One token's attention in every layer and head (from `attention.follow_token`): a row per
    (layer, head), a column per other token."""
    _require(
        frame,
        ["layer_head", "layer", "head", "other", "other_pos", "weight", "token", "token_pos"],
        "attention.follow_token",
    )
    rows = frame.sort_values(["layer", "head"])["layer_head"].drop_duplicates().tolist()
    others = _ordered(frame, "other", "other_pos")
    token = frame["token"].iloc[0]
    pos = int(frame["token_pos"].iloc[0])
    kind = KIND_TITLES.get(frame["kind"].iloc[0], frame["kind"].iloc[0])
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("other:N", sort=others, title="token", axis=alt.Axis(labelAngle=-45)),
            y=alt.Y("layer_head:N", sort=rows, title="layer, head"),
            color=alt.Color("weight:Q", scale=alt.Scale(scheme=HEATMAP_SCHEME, domain=[0, 1])),
            tooltip=["layer:O", "head:O", "other_token:N", alt.Tooltip("weight:Q", format=".3f")],
        )
        .properties(
            width=cell * len(others),
            height=cell * len(rows),
            title=f"{kind}: token {pos} ({token!r}) in every layer and head",
        )
    )


# -- positional encoding ------------------------------------------------------------------------
def positional_encoding_chart(frame: pd.DataFrame, width: int = 480, height: int = 300) -> alt.Chart:
    """The sinusoidal encoding (from `positions.positional_encoding_frame`): position down,
    dimension across, value from -1 (red) to 1 (blue)."""
    _require(frame, ["position", "dimension", "value"], "positions.positional_encoding_frame")
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("dimension:O", title="dimension", axis=alt.Axis(labelOverlap=True)),
            y=alt.Y("position:O", title="position", axis=alt.Axis(labelOverlap=True)),
            color=alt.Color("value:Q", scale=alt.Scale(scheme=DIVERGING_SCHEME, domain=[-1, 1])),
            tooltip=["position:O", "dimension:O", alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(width=width, height=height, title="Positional encoding (Section 3.5)")
    )


def positional_similarity_chart(frame: pd.DataFrame, size: int = 300) -> alt.Chart:
    """Dot products between positions (from `positions.positional_similarity_frame`)."""
    _require(frame, ["position_a", "position_b", "similarity"], "positions.positional_similarity_frame")
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("position_b:O", title="position", axis=alt.Axis(labelOverlap=True)),
            y=alt.Y("position_a:O", title="position", axis=alt.Axis(labelOverlap=True)),
            color=alt.Color("similarity:Q", scale=alt.Scale(scheme="viridis")),
            tooltip=["position_a:O", "position_b:O", alt.Tooltip("similarity:Q", format=".3f")],
        )
        .properties(width=size, height=size, title="Similarity between positions (dot product)")
    )


# -- embeddings ---------------------------------------------------------------------------------
def embedding_scatter(frame: pd.DataFrame, title: str = "Embeddings (PCA)", size: int = 360) -> alt.LayerChart:
    """Tokens at their 2-D PCA coordinates (from `embeddings.embedding_projection`), labelled."""
    _require(frame, ["token", "x", "y"], "embeddings.embedding_projection")
    variance = frame.attrs.get("explained_variance") or [None, None]
    axis_title = [
        f"PC{i + 1}" + (f" ({v:.0%} of variance)" if v is not None else "") for i, v in enumerate(variance[:2])
    ]
    base = alt.Chart(frame).encode(
        x=alt.X("x:Q", title=axis_title[0]), y=alt.Y("y:Q", title=axis_title[1]), tooltip=["token:N", "token_id:Q"]
    )
    points = base.mark_circle(size=60, opacity=0.7)
    labels = base.mark_text(align="left", dx=6, dy=-4, fontSize=11).encode(text="token:N")
    return (points + labels).properties(width=size, height=size, title=title)


def neighbours_chart(frame: pd.DataFrame, token: str | None = None) -> alt.Chart:
    """Nearest neighbours (from `embeddings.nearest_neighbours`) as bars of cosine similarity."""
    _require(frame, ["token", "cosine", "rank"], "embeddings.nearest_neighbours")
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("cosine:Q", title="cosine similarity", scale=alt.Scale(domain=[-1, 1])),
            y=alt.Y("token:N", sort=alt.EncodingSortField("rank"), title=None),
            tooltip=["rank:O", "token:N", alt.Tooltip("cosine:Q", format=".3f")],
        )
        .properties(title=f"Nearest neighbours of {token!r}" if token else "Nearest neighbours")
    )


# -- weights ------------------------------------------------------------------------------------
def weight_histogram_chart(frame: pd.DataFrame, name: str | None = None) -> alt.Chart:
    """A parameter's value histogram (from `weights.weight_histogram`); with several
    parameters in the table, pass `name` to pick one."""
    _require(frame, ["name", "bin_start", "bin_end", "count"], "weights.weight_histogram")
    if name is not None:
        frame = frame[frame["name"] == name]
        if frame.empty:
            raise ValueError(f"No histogram for parameter {name!r} in this table.")
    elif frame["name"].nunique() > 1:
        raise ValueError("The table holds several parameters: pass `name` to choose one.")
    title = str(frame["name"].iloc[0])
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("bin_start:Q", bin="binned", title="value"),
            x2="bin_end:Q",
            y=alt.Y("count:Q", title="count"),
            tooltip=[alt.Tooltip("bin_start:Q", format=".3f"), alt.Tooltip("bin_end:Q", format=".3f"), "count:Q"],
        )
        .properties(title=title, width=360, height=200)
    )


def weight_norms_chart(frame: pd.DataFrame) -> alt.Chart:
    """Each parameter's norm (from `weights.weight_stats`), coloured by group."""
    _require(frame, ["name", "group", "norm", "std"], "weights.weight_stats")
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("norm:Q", title="Frobenius norm"),
            y=alt.Y("name:N", sort=None, title=None),
            color=alt.Color("group:N", sort=None, title="group"),
            tooltip=[
                "name:N",
                "shape:N",
                "count:Q",
                alt.Tooltip("norm:Q", format=".3f"),
                alt.Tooltip("mean:Q", format=".4f"),
                alt.Tooltip("std:Q", format=".4f"),
            ],
        )
        .properties(title="Weight norms", width=360)
    )


def parameter_counts_chart(frame: pd.DataFrame) -> alt.Chart:
    """Parameters per module (from `weights.parameter_counts`), the "total" row left out."""
    _require(frame, ["module", "count", "share"], "weights.parameter_counts")
    frame = frame[frame["module"] != "total"]
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("count:Q", title="parameters"),
            y=alt.Y("module:N", sort=None, title=None),
            tooltip=["module:N", alt.Tooltip("count:Q", format=","), alt.Tooltip("share:Q", format=".1%")],
        )
        .properties(title=f"Parameters per module ({int(frame['count'].sum()):,} in all)", width=360)
    )


# -- training dynamics --------------------------------------------------------------------------
LOG_METRICS = {"loss", "lr", "grad_norm", "max_update_ratio"}  # quantities that span orders of magnitude


def metric_chart(
    frame: pd.DataFrame, metric: str | None = None, log: bool | None = None, height: int = 180
) -> alt.Chart:
    """A line per metric over steps (from `dynamics.metric_frame`); one `metric`, or all of the
    table's metrics in separate rows. Loss, learning rate and gradient norm use a log scale."""
    _require(frame, ["step", "metric", "value"], "dynamics.metric_frame")
    metrics = [metric] if metric else list(dict.fromkeys(frame["metric"]))
    charts = []
    for m in metrics:
        data = frame[frame["metric"] == m]
        if data.empty:
            raise ValueError(f"The table has no metric {m!r}; it has {sorted(frame['metric'].unique())}.")
        use_log = (m in LOG_METRICS) if log is None else log
        use_log = use_log and bool((data["value"] > 0).all())  # a log scale needs positive values
        scale = alt.Scale(type="log") if use_log else alt.Scale(zero=False)
        charts.append(
            alt.Chart(data)
            .mark_line(point=len(data) < 30)
            .encode(
                x=alt.X("step:Q", title="step"),
                y=alt.Y("value:Q", title=m + (" (log)" if use_log else ""), scale=scale),
                tooltip=["step:Q", alt.Tooltip("value:Q", format=".4g")],
            )
            .properties(height=height, width=420, title=m)
        )
    return charts[0] if len(charts) == 1 else alt.vconcat(*charts)


def per_layer_chart(frame: pd.DataFrame, title: str | None = None, log: bool = True) -> alt.Chart:
    """A line per layer group over steps (from `dynamics.per_layer_frame`), log scale: gradient
    norms or update-to-weight ratios of every block side by side."""
    _require(frame, ["step", "group", "value"], "dynamics.per_layer_frame")
    order = frame.attrs.get("group_order") or list(dict.fromkeys(frame["group"]))
    use_log = log and bool((frame["value"] > 0).all())
    return (
        alt.Chart(frame)
        .mark_line()
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y(
                "value:Q", title=title or "value", scale=alt.Scale(type="log") if use_log else alt.Scale(zero=False)
            ),
            color=alt.Color("group:N", sort=order, title="layer group"),
            tooltip=["step:Q", "group:N", alt.Tooltip("value:Q", format=".3g")],
        )
        .properties(width=420, height=220, title=title or "per layer")
    )


STABILITY_METRICS = ("loss", "grad_norm", "max_update_ratio")


def stability_chart(
    runs: Mapping[str, Sequence[Mapping]], metrics: Sequence[str] = STABILITY_METRICS
) -> alt.VConcatChart:
    """Stable versus broken training (`runs`: {recipe name: history}): one panel per metric, a
    line per recipe, log scale, so the broken run's spikes and oversized updates stand out."""
    from model_zoo.views.dynamics import metric_frame

    frames = []
    for name, history in runs.items():
        if not history:  # a run stopped before its first step has nothing to draw
            continue
        long = metric_frame(history, metrics)
        long["recipe"] = name
        frames.append(long)
    if not frames:
        raise ValueError("No run has any recorded step to compare.")
    data = pd.concat(frames, ignore_index=True)
    data = data[data["value"].map(lambda v: v == v and abs(v) != float("inf"))]  # NaN/inf cannot be plotted
    names = list(runs)
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]
    colors = [RECIPE_COLORS.get(n, palette[i % len(palette)]) for i, n in enumerate(names)]
    panels = []
    for m in metrics:
        subset = data[data["metric"] == m]
        if subset.empty:
            continue
        use_log = bool((subset["value"] > 0).all())
        panels.append(
            alt.Chart(subset)
            .mark_line()
            .encode(
                x=alt.X("step:Q", title="step"),
                y=alt.Y(
                    "value:Q",
                    title=m + (" (log)" if use_log else ""),
                    scale=alt.Scale(type="log") if use_log else alt.Scale(),
                ),
                color=alt.Color("recipe:N", scale=alt.Scale(domain=names, range=colors), title="recipe"),
                tooltip=["recipe:N", "step:Q", alt.Tooltip("value:Q", format=".4g")],
            )
            .properties(width=420, height=180, title=m)
        )
    return alt.vconcat(*panels)


# -- decoding and classification ------------------------------------------------------------------
def top_tokens_chart(frame: pd.DataFrame) -> alt.Chart:
    """A decoding step's most likely next tokens (the first table of `attention.step_tables`), the
    chosen one in red."""
    _require(frame, ["token", "probability", "chosen"], "attention.step_tables")
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("token:N", sort=None, title=None),
            color=alt.Color(
                "chosen:N", scale=alt.Scale(domain=[True, False], range=["#d62728", "#1f77b4"]), legend=None
            ),
            tooltip=["token:N", alt.Tooltip("probability:Q", format=".3f")],
        )
        .properties(title=f"top {len(frame)} next tokens (red: chosen)", width=280, height=max(120, 24 * len(frame)))
    )


def label_probabilities_chart(probabilities: Mapping[str, float]) -> alt.Chart:
    """A classifier's probability for each label of one text (`hf.inference.Prediction.probabilities`)."""
    frame = pd.DataFrame({"label": list(probabilities), "probability": list(probabilities.values())})
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1])),
            y=alt.Y("label:N", title=None),
            tooltip=["label:N", alt.Tooltip("probability:Q", format=".3f")],
        )
        .properties(height=30 * len(frame), width=300)
    )


def confusion_chart(frame: pd.DataFrame, title: str) -> alt.LayerChart:
    """A confusion matrix (from `hf.compare.confusion_frame`): true class down, predicted across,
    colour the share of the true class, the count in each cell."""
    _require(frame, ["true", "predicted", "count", "share"], "hf.compare.confusion_frame")
    names = list(dict.fromkeys(frame["true"]))
    base = alt.Chart(frame).encode(x=alt.X("predicted:N", sort=names), y=alt.Y("true:N", sort=names))
    cells = base.mark_rect().encode(
        color=alt.Color("share:Q", scale=alt.Scale(scheme="blues", domain=[0, 1])),
        tooltip=["true:N", "predicted:N", "count:Q", alt.Tooltip("share:Q", format=".0%")],
    )
    return (cells + base.mark_text().encode(text="count:Q")).properties(
        title=title, width=60 * len(names), height=60 * len(names)
    )


# -- matplotlib PNGs (the CLI) ------------------------------------------------------------------
def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    return plt


def save_attention_png(frame: pd.DataFrame, path: str | Path, title: str | None = None) -> Path:
    """Write one attention map (from `attention.attention_map`), or a grid of heads (from
    `attention.attention_heads`), as a PNG with token labels and the weight in each cell."""
    _require(frame, ["head", "query", "query_pos", "key", "key_pos", "weight"], "attention.attention_map")
    plt = _pyplot()
    heads = list(dict.fromkeys(frame["head"]))
    q_tokens = frame.drop_duplicates("query_pos").sort_values("query_pos")["query_token"].astype(str).tolist()
    k_tokens = frame.drop_duplicates("key_pos").sort_values("key_pos")["key_token"].astype(str).tolist()
    n_q, n_k = len(q_tokens), len(k_tokens)
    cols = min(len(heads), 4)
    rows = -(-len(heads) // cols)
    cell = 0.45
    fig, axes = plt.subplots(
        rows, cols, figsize=(max(3.5, cols * (n_k * cell + 1.2)), max(3.0, rows * (n_q * cell + 1.2))), squeeze=False
    )
    image = None
    for index, head in enumerate(heads):
        ax = axes[index // cols][index % cols]
        data = frame[frame["head"] == head]
        matrix = (
            data.pivot(index="query_pos", columns="key_pos", values="weight").sort_index().sort_index(axis=1).to_numpy()
        )
        image = ax.imshow(matrix, cmap="Blues", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(n_k), k_tokens, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(n_q), q_tokens, fontsize=8)
        ax.set_title(f"head {head}", fontsize=9)
        if n_q <= 12 and n_k <= 12:
            for i in range(n_q):
                for j in range(n_k):
                    ax.text(
                        j,
                        i,
                        f"{matrix[i, j]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color="white" if matrix[i, j] > 0.5 else "black",
                    )
    for index in range(len(heads), rows * cols):
        axes[index // cols][index % cols].axis("off")
    fig.supxlabel("key (attended to)", fontsize=9)
    fig.supylabel("query (attending)", fontsize=9)
    fig.suptitle(title or _attention_title(frame, heads=len(heads) > 1), fontsize=10)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
    return _save(fig, path, plt)


def save_history_png(
    history: Sequence[Mapping] | Mapping[str, Sequence[Mapping]],
    path: str | Path,
    metrics: Sequence[str] = STABILITY_METRICS,
) -> Path:
    """Loss, gradient-norm and largest update/weight-ratio curves of one run's history, or of
    several ({name: history}, as the stability demo returns), as a PNG with log scales."""
    from model_zoo.views.dynamics import history_frame

    plt = _pyplot()
    runs = history if isinstance(history, Mapping) else {"run": history}
    fig, axes = plt.subplots(len(metrics), 1, figsize=(6, 2.6 * len(metrics)), sharex=True, squeeze=False)
    for ax, metric in zip(axes[:, 0], metrics, strict=True):
        for name, run in runs.items():
            if not run:  # stopped before its first step
                continue
            wide = history_frame(run)
            if metric in wide:
                data = wide[["step", metric]].dropna()
                ax.plot(data["step"], data[metric], label=name, color=RECIPE_COLORS.get(name))
        ax.set_yscale("log")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if len(runs) > 1 and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    axes[-1, 0].set_xlabel("step")
    return _save(fig, path, plt)


def _save(fig, path: str | Path, plt) -> Path:
    from model_zoo.utils import atomic_write_bytes

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path} must end in .png.")
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


# -- helpers ------------------------------------------------------------------------------------
def _ordered(frame: pd.DataFrame, label: str, position: str) -> list[str]:
    return frame.drop_duplicates(position).sort_values(position)[label].tolist()


def _attention_title(frame: pd.DataFrame, heads: bool = False) -> str:
    kind = frame["kind"].iloc[0] if "kind" in frame else "attention"
    layer = frame["layer"].iloc[0] if "layer" in frame else "?"
    name = KIND_TITLES.get(kind, kind)
    if heads:
        return f"{name}, layer {layer}, every head"
    head = frame["head"].iloc[0] if "head" in frame else "?"
    return f"{name}, layer {layer}, " + ("heads averaged" if head == "mean" else f"head {head}")


def _require(frame: pd.DataFrame, columns: list[str], made_by: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"Expected a DataFrame from {made_by}, got {type(frame).__name__}.")
    missing = [c for c in columns if c not in frame]
    if missing:
        raise ValueError(f"The table lacks columns {missing}: build it with {made_by}.")
    if frame.empty:
        raise ValueError(f"The table from {made_by} is empty: nothing to draw.")


# -- insights ---------------------------------------------------------------------------------------
SNAP_COLOR = "#d62728"
STEP_COLOR = "#555555"
BEAM_STATUS_COLORS = {"kept": "#1f77b4", "finished": "#2ca02c", "cut": "#ff7f0e", "pruned": "#bbbbbb"}


def _step_rules(step: int | None, snap_step: int | None) -> list:
    """Vertical rules: the chosen snapshot step (grey, dashed) and the snap step (red)."""
    rules = []
    if step is not None:
        rules.append(
            alt.Chart(pd.DataFrame({"step": [step]}))
            .mark_rule(color=STEP_COLOR, strokeDash=[4, 3])
            .encode(x="step:Q", tooltip=[alt.Tooltip("step:Q", title="shown step")])
        )
    if snap_step is not None:
        rules.append(
            alt.Chart(pd.DataFrame({"step": [snap_step], "label": ["snapped"]}))
            .mark_rule(color=SNAP_COLOR, strokeWidth=2)
            .encode(x="step:Q", tooltip=[alt.Tooltip("step:Q", title="snapped at step")])
        )
    return rules


def training_snapshot_chart(
    loss: pd.DataFrame, shares: pd.DataFrame, step: int | None = None, snap=None, threshold: float | None = None
) -> alt.VConcatChart:
    """Attention forming during training: the loss curve (from `dynamics.metric_frame(history,
    ["loss"])`) above each cross-attention head's alignment share (from
    `attention.alignment_shares`), both with the shown step (dashed) and the snap step (red)."""
    _require(loss, ["step", "metric", "value"], "dynamics.metric_frame")
    _require(shares, ["step", "layer_head", "share"], "attention.alignment_shares")
    snap_step = snap.step if snap is not None else None
    threshold = threshold if threshold is not None else (snap.threshold if snap is not None else None)
    data = loss[loss["metric"] == "loss"]
    use_log = bool((data["value"] > 0).all())
    loss_line = (
        alt.Chart(data)
        .mark_line()
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y(
                "value:Q",
                title="loss" + (" (log)" if use_log else ""),
                scale=alt.Scale(type="log" if use_log else "linear"),
            ),
            tooltip=["step:Q", alt.Tooltip("value:Q", format=".4g", title="loss")],
        )
    )
    share_lines = (
        alt.Chart(shares)
        .mark_line(point=True)
        .encode(
            x=alt.X("step:Q", title="step"),
            y=alt.Y("share:Q", title="alignment share", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("layer_head:N", title="cross-attention head"),
            tooltip=["step:Q", "layer_head:N", alt.Tooltip("share:Q", format=".3f")],
        )
    )
    layers = [share_lines, *_step_rules(step, snap_step)]
    if threshold is not None:
        layers.append(
            alt.Chart(pd.DataFrame({"threshold": [threshold]}))
            .mark_rule(color=SNAP_COLOR, strokeDash=[2, 2], opacity=0.6)
            .encode(y="threshold:Q")
        )
    title = f"snapped at step {snap_step}" if snap_step is not None else "not snapped yet"
    return alt.vconcat(
        alt.layer(loss_line, *_step_rules(step, snap_step)).properties(width=420, height=140, title="loss"),
        alt.layer(*layers).properties(
            width=420, height=180, title=f"share of cross-attention on the right source token ({title})"
        ),
    )


def selected_heads_chart(frame: pd.DataFrame, columns: int = 4, cell: int = 18) -> alt.FacetChart:
    """Heads picked across layers (from `attention.selected_heads`), side by side in picking order."""
    _require(frame, ["layer_head", "query", "key", "weight"], "attention.selected_heads")
    n_q, n_k = frame["query"].nunique(), frame["key"].nunique()
    order = list(dict.fromkeys(frame["layer_head"]))
    kind = KIND_TITLES.get(frame["kind"].iloc[0], frame["kind"].iloc[0])
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(**_attention_encodings(frame))
        .properties(width=cell * n_k, height=cell * n_q)
        .facet(facet=alt.Facet("layer_head:N", sort=order, title="layer, head"), columns=columns)
        .properties(title=f"{kind}: the heads picked")
    )


def attention_difference_chart(frame: pd.DataFrame, title: str | None = None, cell: int = 24) -> alt.Chart:
    """after − before of one map (from `attention.attention_difference`): red = lost weight, blue =
    gained, white = unchanged; the scale is symmetric."""
    _require(
        frame,
        ["query", "query_pos", "key", "key_pos", "difference", "before", "after"],
        "attention.attention_difference",
    )
    queries, keys = _ordered(frame, "query", "query_pos"), _ordered(frame, "key", "key_pos")
    extent = max(0.05, float(frame["difference"].abs().max()))
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("key:N", sort=keys, title="key (attended to)", axis=alt.Axis(labelAngle=-45)),
            y=alt.Y("query:N", sort=queries, title="query (attending)"),
            color=alt.Color(
                "difference:Q", scale=alt.Scale(scheme="redblue", domain=[-extent, extent]), title="after − before"
            ),
            tooltip=[
                "query_token:N",
                "key_token:N",
                alt.Tooltip("before:Q", format=".3f"),
                alt.Tooltip("after:Q", format=".3f"),
                alt.Tooltip("difference:Q", format="+.3f"),
            ],
        )
        .properties(
            width=cell * len(keys),
            height=cell * len(queries),
            title=title or f"{_attention_title(frame)}: after − before",
        )
    )


def attention_change_chart(frame: pd.DataFrame, cell: int = 34) -> alt.FacetChart:
    """How far each head moved (from `attention.attention_change`): layer down, head across, one
    panel per attention kind, the mean Jensen-Shannon distance (0 = unchanged, 1 = disjoint) as
    colour and number."""
    _require(frame, ["kind", "layer", "head", "js_distance", "rank"], "attention.attention_change")
    data = frame.assign(kind_title=frame["kind"].map(lambda k: KIND_TITLES.get(k, k)))
    n_layers, n_heads = data["layer"].nunique(), data["head"].nunique()
    base = alt.Chart().encode(x=alt.X("head:O", title="head"), y=alt.Y("layer:O", title="layer"))
    cells = base.mark_rect().encode(
        color=alt.Color("js_distance:Q", scale=alt.Scale(scheme="oranges", domain=[0, 1]), title="JS distance"),
        tooltip=["kind:N", "layer:O", "head:O", alt.Tooltip("js_distance:Q", format=".3f"), "rank:Q"],
    )
    numbers = base.mark_text(fontSize=10).encode(
        text=alt.Text("js_distance:Q", format=".2f"),
        color=alt.condition("datum.js_distance > 0.5", alt.value("white"), alt.value("black")),
    )
    inputs = int(frame["inputs"].iloc[0]) if "inputs" in frame else None
    return (
        alt.layer(cells, numbers, data=data)
        .properties(width=cell * n_heads, height=cell * n_layers)
        .facet(column=alt.Column("kind_title:N", title=None, sort=list(KIND_TITLES.values())))
        .properties(
            title="How far each head's attention moved (mean Jensen-Shannon distance, base 2)"
            + (f" over {inputs} inputs" if inputs else "")
        )
    )


def logit_lens_chart(frame: pd.DataFrame, cell: int = 44) -> alt.LayerChart:
    """The logit lens step by step (from `views.decoding.lens_frame`): a column per generated token,
    a row per decoder block, each cell the most likely next token read from that block's output,
    coloured by its probability."""
    _require(frame, ["step", "chosen", "block", "block_label", "rank", "token", "probability"], "decoding.lens_frame")
    top = frame[frame["rank"] == 1].assign(column=lambda f: f["step"].astype(str) + ": " + f["chosen"].astype(str))
    columns = list(dict.fromkeys(top.sort_values("step")["column"]))
    blocks = top.sort_values("block", ascending=False)["block_label"].drop_duplicates().tolist()
    base = alt.Chart(top).encode(
        x=alt.X("column:N", sort=columns, title="step: token chosen", axis=alt.Axis(labelAngle=-45)),
        y=alt.Y("block_label:N", sort=blocks, title=None),
    )
    cells = base.mark_rect().encode(
        color=alt.Color("probability:Q", scale=alt.Scale(scheme="greens", domain=[0, 1]), title="probability"),
        tooltip=["step:Q", "block_label:N", "token:N", alt.Tooltip("probability:Q", format=".3f")],
    )
    text = base.mark_text(fontSize=11).encode(
        text="token:N", color=alt.condition("datum.probability > 0.6", alt.value("white"), alt.value("black"))
    )
    return (cells + text).properties(
        width=cell * len(columns), height=34 * len(blocks), title="Logit lens: each block's most likely next token"
    )


def beam_tree_chart(frame: pd.DataFrame, step_width: int = 80, slot_height: int = 30) -> alt.LayerChart:
    """A beam search's tree (from `views.decoding.beam_tree_frame`): a column per step, its
    candidates best on top, an edge to each one's parent; colour says kept, finished (<eos>),
    pruned or cut (length cap); the returned hypotheses are ringed and numbered."""
    _require(
        frame, ["step", "slot", "parent_step", "parent_slot", "token", "status", "score"], "decoding.beam_tree_frame"
    )
    statuses = [s for s in BEAM_STATUS_COLORS if s in set(frame["status"])]
    color = alt.Color(
        "status:N",
        scale=alt.Scale(domain=statuses, range=[BEAM_STATUS_COLORS[s] for s in statuses]),
        title="candidate",
    )
    y_scale = alt.Scale(reverse=True, domain=[-0.5, float(frame["slot"].max()) + 0.5])
    x_scale = alt.Scale(domain=[-0.5, float(frame["step"].max()) + 0.5])
    tooltip = [
        "prefix:N",
        "status:N",
        alt.Tooltip("log_prob:Q", format=".3f", title="log-prob"),
        alt.Tooltip("score:Q", format=".3f", title="score (normalised)"),
        "rank:Q",
    ]
    edges = (
        alt.Chart(frame.dropna(subset=["parent_step"]))
        .mark_rule(opacity=0.5)
        .encode(
            x=alt.X("parent_step:Q", scale=x_scale, title="step (tokens generated)", axis=alt.Axis(tickMinStep=1)),
            x2="step:Q",
            y=alt.Y("parent_slot:Q", scale=y_scale, title="candidates, most likely on top", axis=None),
            y2="slot:Q",
            color=color,
        )
    )
    nodes = (
        alt.Chart(frame)
        .mark_circle(size=560, opacity=0.9)
        .encode(x=alt.X("step:Q", scale=x_scale), y=alt.Y("slot:Q", scale=y_scale), color=color, tooltip=tooltip)
    )
    labels = (
        alt.Chart(frame)
        .mark_text(fontSize=9, color="white", fontWeight="bold")
        .encode(x=alt.X("step:Q", scale=x_scale), y=alt.Y("slot:Q", scale=y_scale), text="token:N", tooltip=tooltip)
    )
    scores = (
        alt.Chart(frame[frame["step"] > 0])
        .mark_text(fontSize=8, dy=14, color="#333333")
        .encode(
            x=alt.X("step:Q", scale=x_scale),
            y=alt.Y("slot:Q", scale=y_scale),
            text=alt.Text("log_prob:Q", format=".2f"),
        )
    )
    returned = frame[frame["returned"] > 0]
    rings = (
        alt.Chart(returned)
        .mark_point(size=900, shape="circle", filled=False, color="black", strokeWidth=2)
        .encode(x=alt.X("step:Q", scale=x_scale), y=alt.Y("slot:Q", scale=y_scale))
    )
    places = (
        alt.Chart(returned)
        .mark_text(fontSize=11, dx=20, fontWeight="bold")
        .encode(
            x=alt.X("step:Q", scale=x_scale), y=alt.Y("slot:Q", scale=y_scale), text=alt.Text("returned:Q", format="d")
        )
    )
    n_steps, n_slots = int(frame["step"].max()) + 1, int(frame["slot"].max()) + 1
    return alt.layer(edges, nodes, labels, scores, rings, places).properties(
        width=step_width * n_steps,
        height=slot_height * max(n_slots, 4) + 20,
        title="Beam search: every candidate (number under a node: its log-probability; ringed: returned, 1 = best)",
    )
