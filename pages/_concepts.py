"""The course's concepts in plain words, where the app shows them: a paragraph, the formula, and
the file and function of `model_zoo` that computes it; the one-sentence help of every jargon
control; and the paper's Figure 1 drawn with our module names. UI text only.

    explain("attention")          an expander: words, formula, code
    HELP["label_smoothing"]       the `help=` of a widget
    figure_1(cfg)                 Figure 1 as a graphviz diagram
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st


@dataclass(frozen=True)
class Concept:
    title: str
    words: str  # markdown, plain words, a few sentences
    formula: str | None = None  # LaTeX for st.latex
    code: str = ""  # where model_zoo computes it: "path: function"


CONCEPTS: dict[str, Concept] = {
    # -- the architecture (Build, Inspect) -------------------------------------------------------
    "attention": Concept(
        "Scaled dot-product attention",
        "Every token asks a question (its **query** q), every token offers a label (its **key** k) and a "
        "content (its **value** v). The score of a query against each key is their dot product: large "
        "when they point the same way. Dividing by √dₖ keeps the scores small enough that the softmax does "
        "not saturate; the softmax turns a row of scores into weights that sum to 1; the output is the "
        "weighted average of the values. An attention map shows exactly those weights: one row per query.",
        r"\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}}\right) V",
        "model_zoo/scratch/attention.py: scaled_dot_product_attention",
    ),
    "multi_head": Concept(
        "Multi-head attention",
        "Instead of one attention over all D dimensions, the model splits them into H heads of dₖ = D / H "
        "dimensions, each with its own projections W_Q, W_K, W_V. Each head can look for something different "
        "(the same position, the previous token, a matching symbol); their outputs are concatenated and mixed "
        "by W_O. Same cost as one big head, more kinds of looking.",
        r"\mathrm{head}_i = \mathrm{Attention}(QW^Q_i, KW^K_i, VW^V_i),\quad "
        r"\begin{aligned} &\mathrm{MultiHead}(Q,K,V) \\ &\;\;= \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_H)\,W^O"
        r"\end{aligned},\quad d_k = D/H",
        "model_zoo/scratch/attention.py: MultiHeadAttention (_split_heads reshapes (B, T, D) to (B, H, T, dₖ))",
    ),
    "masks": Concept(
        "Masked self-attention, cross-attention and padding masks",
        "The **decoder's self-attention is masked**: position i may look only at positions ≤ i, so while "
        "training it cannot peek at the word it must predict (the zero upper triangle of its map). "
        "**Cross-attention** is where the decoder reads the source: its queries come from the decoder, its "
        "keys and values from the encoder's output. **Padding masks** give padded positions zero weight. A "
        "mask sets a score to −∞ before the softmax, so its weight is exactly 0.",
        r"\mathrm{score}_{ij} = \begin{cases} q_i \cdot k_j / \sqrt{d_k} & j \le i \\ -\infty & j > i \end{cases}",
        "model_zoo/scratch/attention.py: causal_mask, padding_mask; model_zoo/scratch/layers.py: DecoderBlock",
    ),
    "feed_forward": Concept(
        "Position-wise feed-forward network",
        "After attention has mixed information between positions, each position goes alone through the "
        "same two-layer network: widen to d_ff (4 × D in the paper), a ReLU, back to D. It holds most of the "
        "parameters and does per-token computation on what attention gathered.",
        r"\mathrm{FFN}(x) = \max(0,\, xW_1 + b_1)\,W_2 + b_2",
        "model_zoo/scratch/layers.py: FeedForward",
    ),
    "residual_norm": Concept(
        "Residual connections and LayerNorm",
        "Each sub-layer (attention, feed-forward) is wrapped: its input is added back to its output (the "
        "residual, so information and gradients can skip it), and LayerNorm rescales each position's vector "
        "to mean 0 and variance 1, then applies a learned gain γ and shift β. **Post-norm** (the paper) "
        "normalises after the addition; **pre-norm** normalises the sub-layer's input, which trains deep "
        "stacks more easily.",
        r"\text{post: } \mathrm{LayerNorm}(x + \mathrm{Sublayer}(x)),\quad \text{pre: } x + \mathrm{Sublayer}(\mathrm{LayerNorm}(x)),"
        r"\quad \mathrm{LayerNorm}(x) = \gamma \odot \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} + \beta",
        "model_zoo/scratch/layers.py: EncoderBlock.forward, DecoderBlock.forward (norm_first)",
    ),
    "encoder_block": Concept(
        "Encoder block and decoder block",
        "An **encoder block** is self-attention then feed-forward, each with residual + LayerNorm. A "
        "**decoder block** has three sub-layers: masked self-attention over what it has written, "
        "cross-attention over the encoder's output, then feed-forward. Every block maps (B, length, D) to the "
        "same shape, so blocks can be stacked.",
        None,
        "model_zoo/scratch/layers.py: EncoderBlock, DecoderBlock",
    ),
    "stacking": Concept(
        "Stacking N blocks",
        "The encoder is N encoder blocks one after the other (the paper: N = 6), the decoder N decoder blocks; "
        "every decoder block reads the output of the *last* encoder block. Lower blocks tend to find simple "
        "patterns (neighbours, the same token), higher ones combine them. Pre-norm stacks end with a final "
        "LayerNorm.",
        None,
        "model_zoo/scratch/layers.py: Encoder, Decoder (nn.ModuleList of blocks)",
    ),
    "embeddings": Concept(
        "Embeddings (× √D)",
        "A token id is just an index; the embedding table turns it into a learned vector of D numbers (a row "
        "of a V × D matrix). The paper multiplies it by √D so the token vectors are not drowned by the "
        "positional encoding that is added next. Tokens used alike end up with similar vectors.",
        r"x = E[\text{token}] \cdot \sqrt{D}",
        "model_zoo/scratch/layers.py: Embeddings",
    ),
    "positional_encoding": Concept(
        "Positional encoding",
        "Attention itself ignores order: shuffling the tokens shuffles the output the same way. So each "
        "position gets a fixed vector of sines and cosines of different wavelengths, added to its embedding. "
        "Fast waves tell neighbours apart, slow waves far-away positions, and the dot product of two positions "
        "depends only on their distance.",
        r"PE_{(pos,\,2i)} = \sin\!\left(\frac{pos}{10000^{2i/D}}\right),\quad PE_{(pos,\,2i+1)} = \cos\!\left(\frac{pos}{10000^{2i/D}}\right)",
        "model_zoo/scratch/layers.py: sinusoidal_encoding, PositionalEncoding",
    ),
    "output_softmax": Concept(
        "Final linear layer and softmax",
        "The decoder's last vectors (B, T, D) go through one linear layer to V scores, one per vocabulary "
        "token (the logits); the softmax turns them into probabilities of the next token. With tied "
        "embeddings this layer reuses the target embedding matrix.",
        r"P(y_t = w \mid y_{<t}, x) = \mathrm{softmax}(h_t W_{\text{out}} + b)_w",
        "model_zoo/scratch/transformer.py: Transformer.generator, TransformerOutput.probabilities",
    ),
    "shapes": Concept(
        "Shapes, stage by stage",
        "Letters for the sizes: B batch, S source length, T target length, D d_model, H heads, V vocabulary. "
        "Token ids (B, S) become vectors (B, S, D) and stay that shape through every block; attention weights "
        "are (B, H, queries, keys); only the output layer changes the width, to V.",
        None,
        "model_zoo/views/shapes.py: shape_trace (forward hooks on every module)",
    ),
    "parity": Concept(
        "Same numbers as PyTorch",
        "A random `nn.Transformer` is built, its weights copied into our scratch model, and both read the same "
        "batch. If every formula above is implemented the way PyTorch implements it, the logits agree to float "
        "precision (~1e-6). It is a test of the code, not of learning.",
        None,
        "model_zoo/scratch/interop.py: from_torch, parity_check",
    ),
    # -- training (Train) -------------------------------------------------------------------------
    "toy_data": Concept(
        "Toy tasks",
        "Sequences of symbols made on the fly: **copy** (output = input), **reverse**, **sort**, or **english** "
        "(repeat a review sentence). Each has a rule a Transformer must discover from examples, and a picture "
        "its attention should draw: a diagonal, an anti-diagonal, a permutation. A fixed held-out set never "
        "appears in training, so exact match on it measures real learning.",
        None,
        "model_zoo/toy/tasks.py: CopyTask, ReverseTask, SortTask, EnglishIdentityTask",
    ),
    "loss": Concept(
        "Training loss (cross-entropy)",
        "At each position the model gives the right next token some probability p; the loss is −log p, "
        "averaged over the real (non-padding) tokens. It is 0 when the model is sure and right, and ln V when "
        "it guesses uniformly among V tokens: ln 10 = 2.30 for ten symbols. A loss stuck at ln k means the model "
        "is choosing among about k tokens without reading the input.",
        r"\mathcal{L} = -\frac{1}{N}\sum_{t} \log p_\theta(y_t \mid y_{<t}, x)",
        "model_zoo/scratch/transformer.py: Transformer.loss",
    ),
    "teacher_forcing": Concept(
        "Teacher forcing",
        "While training, the decoder reads the *true* previous tokens (the target shifted right, starting "
        "with <bos>) rather than its own guesses, and predicts every position at once. Fast and stable; at "
        "decoding time it must read its own outputs, which is why held-out exact match can lag token accuracy.",
        r"\text{input } (\langle bos\rangle, y_1, \dots, y_{n}) \;\to\; \text{predict } (y_1, \dots, y_n, \langle eos\rangle)",
        "model_zoo/toy/tasks.py: Batch (tgt_in, tgt_out); model_zoo/toy/training.py: train",
    ),
    "optimizer": Concept(
        "AdamW, warmup and the learning-rate schedule",
        "**AdamW** scales each weight's step by running averages of its gradient and squared gradient, and "
        "decays weights separately from the gradient. **Warmup** raises the learning rate linearly for the "
        "first steps, while Adam's averages are still noisy; then it decays: **noam** (the paper) as 1/√step, "
        "**cosine** smoothly to 0. **Gradient clipping** caps the gradient's norm at 1.",
        r"\text{noam: } lr(s) = lr_{\text{peak}} \cdot \min\!\left(\frac{s}{w},\ \sqrt{\frac{w}{s}}\right)",
        "model_zoo/toy/training.py: train (torch.optim.AdamW), lr_factor",
    ),
    "checkpoints": Concept(
        "Saving weights and checkpoints",
        "A run is a folder: the weights in safetensors (Hugging Face's format: plain tensors, no code), the "
        "config, the vocabulary and the history. A checkpoint also keeps the optimizer, scheduler and random "
        "state, so training can resume exactly where it stopped; the last good checkpoint survives a crash.",
        None,
        "model_zoo/scratch/transformer.py: Transformer.save / load; model_zoo/toy/runs.py: save_checkpoint, load_run",
    ),
    # -- decoding (Train, Step-through) -----------------------------------------------------------
    "greedy": Concept(
        "Greedy decoding",
        "Write one token at a time: run the decoder on what is written so far, take the most likely next "
        "token, append it, repeat until <eos> or the length cap. The encoder runs once; a cache keeps each "
        "layer's keys and values so each step only computes the new position.",
        r"y_t = \arg\max_w\, P(w \mid y_{<t}, x)",
        "model_zoo/toy/decoding.py: greedy_decode, DecodingSession.step",
    ),
    "sampling": Concept(
        "Sampling, temperature and top-k",
        "Instead of the most likely token, draw one from the distribution. **Temperature** T divides the "
        "logits first: T < 1 sharpens (towards greedy), T > 1 flattens (more surprises). **Top-k** keeps only "
        "the k most likely tokens. The random generator is seeded, so the same settings give the same draw.",
        r"P_T(w) = \frac{e^{z_w / T}}{\sum_{v} e^{z_v / T}}",
        "model_zoo/toy/decoding.py: sample_decode",
    ),
    "beam": Concept(
        "Beam search",
        "Keep the k most likely prefixes (the beam) at every step instead of one, and pick the best finished "
        "one. A hypothesis's score is its total log-probability divided by a length penalty, so longer outputs "
        "are not punished just for having more terms.",
        r"\mathrm{score} = \frac{\log P(y \mid x)}{\left((5 + |y|)/6\right)^{\alpha}}",
        "model_zoo/toy/decoding.py: beam_search, length_normalisation",
    ),
    "decoding_ids": Concept(
        "From ids back to text",
        "The model only ever sees and writes ids. The vocabulary maps them back to tokens; special tokens "
        "(<bos>, <eos>, <pad>, or [CLS] and [SEP]) are dropped, and word pieces (##ing) are glued back.",
        None,
        "model_zoo/toy/tasks.py: Vocab.decode; model_zoo/hf/data.py: describe_sample (tokenizer.decode)",
    ),
    # -- looking inside (Inspect) -----------------------------------------------------------------
    "attention_maps": Concept(
        "Reading an attention map",
        "Rows are queries (the token doing the looking), columns keys (the tokens looked at); a cell is how much "
        "of the query's attention goes to that key, and each row sums to 1. A bright diagonal means 'look at the "
        "same position', an anti-diagonal 'look at the mirror position', one bright column 'everyone looks at "
        "this token'. Maps are the model's own weights from one forward pass on your input.",
        None,
        "model_zoo/views/attention.py: attention_for_text, attention_map; model_zoo/views/captions.py: attention_pattern",
    ),
    "pca": Concept(
        "Embeddings in two dimensions (PCA)",
        "Each token is a vector of D numbers; a screen has two. PCA (principal component analysis) finds the two "
        "directions along which the vectors differ most and projects onto them. '% of variance' says how much of "
        "the spread those two axes keep: 80% means the picture is faithful, 10% that points close here may be "
        "far apart in the full space (the nearest-neighbour list uses all D numbers).",
        r"\text{cosine}(a, b) = \frac{a \cdot b}{\lVert a \rVert\, \lVert b \rVert}",
        "model_zoo/views/embeddings.py: embedding_projection, nearest_neighbours",
    ),
    "weights": Concept(
        "Weights: norms and histograms",
        "A weight matrix's (Frobenius) norm is the square root of the sum of its squared entries: its overall "
        "size. Matrices start small and random (xavier: standard deviation √(2 / (fan_in + fan_out))), LayerNorm "
        "gains at 1 and biases at 0; comparing the numbers now with those starting values shows what training "
        "moved.",
        r"\lVert W \rVert_F = \sqrt{\textstyle\sum_{ij} W_{ij}^2}",
        "model_zoo/views/weights.py: weight_stats, weight_histogram, parameter_counts",
    ),
    "gradcheck": Concept(
        "Gradient check",
        "Backpropagation computes every gradient exactly by the chain rule. A gradient check measures them "
        "another way, by nudging each input by ε and watching the output, and compares the two in float64. "
        "Agreement (below 1e-5) proves our hand-written attention and blocks have a correct backward pass.",
        r"\frac{\partial f}{\partial x} \approx \frac{f(x + \epsilon) - f(x - \epsilon)}{2\epsilon}",
        "model_zoo/scratch/gradcheck.py: check_gradients (torch.autograd.gradcheck)",
    ),
    "dynamics": Concept(
        "Training dynamics",
        "The curves of a run: loss, accuracy, learning rate, gradient norm (how steep the loss is), and per layer "
        "group the **update ratio** ‖Δw‖ / ‖w‖, how much one step changes the weights relative to their size. "
        "About 1e-3 is healthy for Adam; 1e-1 rewrites the weights each step (learning rate too high), 1e-5 "
        "barely moves them.",
        r"\text{update ratio} = \frac{\lVert \Delta W \rVert}{\lVert W \rVert} \approx 10^{-3}",
        "model_zoo/toy/training.py: train (metrics per step); model_zoo/views/dynamics.py: per_layer_frame",
    ),
    "stability": Concept(
        "Stable versus broken training",
        "The same task and initial weights, two recipes. The broken one (no warmup and a huge learning rate, "
        "or embeddings that drown the positional encoding) shows gradient spikes, update ratios far above 1e-3, "
        "and a loss that stalls at ln k: the model gives up and guesses the commonest symbols.",
        None,
        "model_zoo/views/stability.py: stability_demo, RECIPES",
    ),
    # -- fine-tuning (Fine-tune, Compare) ---------------------------------------------------------
    "pretrained": Concept(
        "Loading a pretrained model",
        "A pretrained encoder (MiniLM, BERT) already turns text into useful vectors: it read a lot of text "
        "before. We load its weights and put a new, randomly initialised classification head on top, one output "
        "per label. Before fine-tuning the head is random, so its predictions are a guess.",
        None,
        "model_zoo/hf/models.py: load_pretrained; model_zoo/hf/inference.py: load_untrained",
    ),
    "tokenization": Concept(
        "Tokenization, special tokens and the attention mask",
        "The tokenizer cuts text into word pieces from a fixed vocabulary ('unforgettable' → 'un', '##forget', "
        "'##table') and maps them to ids. BERT-style models add **[CLS]** at the start (its final vector "
        "summarises the sentence for the classifier) and **[SEP]** at the end. The **attention mask** is 1 for "
        "real tokens and 0 for padding, so padding gets no attention; the **label** is the class index.",
        None,
        "model_zoo/hf/data.py: describe_sample, tokenize",
    ),
    "split": Concept(
        "Train / test split",
        "A share of the examples (`test_size` in `FinetuneConfig`) is held out before training and never "
        "trained on; before and after are scored on them. The split is stratified (each label keeps its share) and seeded, so the same settings always "
        "hold out the same sentences and two runs are compared fairly.",
        None,
        "model_zoo/hf/data.py: split",
    ),
    "trainer_vs_loop": Concept(
        "Trainer versus a plain loop",
        "Hugging Face's `Trainer` runs the training loop for you (batching, optimizer, schedule, evaluation, "
        "logging); the plain PyTorch loop writes the same steps out in ~60 lines: forward, loss, backward, clip, "
        "step. Same optimizer (AdamW), schedule and metrics, so the results match; the loop shows what Trainer hides.",
        None,
        "model_zoo/hf/trainer.py: trainer_loop; model_zoo/hf/loop.py: custom_loop",
    ),
    "metrics": Concept(
        "Accuracy and macro-F1",
        "Accuracy is the share of right answers. F1 of one label is the harmonic mean of its precision (of those "
        "predicted that label, how many are right) and recall (of those truly that label, how many were found); "
        "**macro-F1** averages F1 over labels, so a model that answers one label for everything scores high "
        "accuracy on lopsided data but low macro-F1.",
        r"F_1 = \frac{2\,PR}{P + R},\qquad \text{macro-}F_1 = \frac{1}{C}\sum_{c=1}^{C} F_{1,c}",
        "model_zoo/hf/compare.py: classification_metrics",
    ),
    "inference": Concept(
        "Inference on new text",
        "New text goes through the same tokenizer, the model returns one score (logit) per label, and the "
        "softmax turns them into probabilities; the label is the most likely one. No gradients, no training: "
        "eval mode, dropout off.",
        r"P(\text{label} \mid \text{text}) = \mathrm{softmax}(W\, h_{[CLS]} + b)",
        "model_zoo/hf/inference.py: predict, attention_maps",
    ),
    "before_after": Concept(
        "Before versus after fine-tuning",
        "The same held-out sentences, scored by the pretrained model with its random head (before) and by the "
        "fine-tuned model (after). The confusion matrix counts, for each true label, what was predicted: before, "
        "often one column (one answer for everything); after, a bright diagonal.",
        None,
        "model_zoo/hf/compare.py: evaluate_model, confusion_matrix, load_comparison",
    ),
    "finetuned_attention": Concept(
        "Attention after fine-tuning",
        "The same sentence's attention in the pretrained and the fine-tuned model. Fine-tuning changes the "
        "weights a little, so most heads keep their pattern (many look at [CLS], [SEP] or the next token); the "
        "last layers change most, because they feed the classifier.",
        None,
        "model_zoo/hf/compare.py: attention_before_after",
    ),
}


def formula_lines(formula: str | None) -> list[str]:
    """A concept's formula as the lines it is drawn in: one `st.latex` per equation (split where
    the formula separates them with `\\quad`), so a half-width column on a 1280 px projector fits
    each line instead of cutting one long row on the right."""
    if not formula:
        return []
    parts = [part.strip().rstrip(",").strip() for part in formula.split(r"\quad")]
    return [part for part in parts if part]


def look_for(text: str, where=st) -> None:
    """The computed "what to look for" line under a chart (`model_zoo.views.figures` writes it)."""
    where.caption(f"**What to look for:** {text}")


def explain(key: str, expanded: bool = False) -> None:
    """An expander with a concept: plain words, the formula, and where `model_zoo` computes it."""
    concept = CONCEPTS[key]
    with st.expander(f":material/school: {concept.title}: what is it?", expanded=expanded):
        show(key)


def show(key: str) -> None:
    """A concept's words, formula and code, drawn where the caller is (the lesson, an expander)."""
    concept = CONCEPTS[key]
    st.markdown(concept.words)
    for line in formula_lines(concept.formula):
        st.latex(line)
    if concept.code:
        st.caption(f"Computed in `{concept.code}`")


# -- help for every control whose name is jargon: what it is, and what moving it changes ----------
HELP: dict[str, str] = {
    # architecture
    "d_model": "d_model (D): the length of every token's vector inside the model. Larger = more capacity and more "
    "parameters (they grow as D²); must be even and divisible by the heads.",
    "heads": "Heads (H): attention is split into H heads of D / H dimensions, each free to look for something else. "
    "More heads = more kinds of looking, each narrower; the parameter count does not change.",
    "d_ff": "d_ff: the width of the feed-forward layer inside each block (the paper: 4 × d_model). Larger = more "
    "parameters and per-token computation.",
    "blocks": "Blocks (N): how many encoder (or decoder) blocks are stacked. More = deeper patterns, slower, and "
    "harder to train with post-norm.",
    "norm": "Post-norm (the paper): LayerNorm after adding the residual. Pre-norm: LayerNorm before each sub-layer, "
    "which keeps a clean residual path and trains deep stacks more easily.",
    "vocab": "Vocabulary size (V): how many distinct tokens the embedding tables and the output layer have rows for.",
    "dropout": "Dropout: during training, zero this share of activations at random so the model cannot rely on any "
    "one of them. 0 for the toy tasks (endless fresh data); 0.1 in the paper.",
    "activation": "The non-linearity inside the feed-forward layer: ReLU (the paper) or GELU (BERT, GPT), a smoother "
    "ReLU.",
    "tie": "Tie embeddings: the output layer reuses the target embedding matrix (Section 3.4), saving V × D "
    "parameters; a token's input vector and its output scoring vector become the same.",
    "x_sqrt_d": "× √D: embeddings are multiplied by √d_model so they are not drowned by the positional encoding "
    "added to them.",
    "count_level": "Group: embeddings, each block, final norms, output layer. Module: inside each block too "
    "(self-attention, cross-attention, feed-forward, norms).",
    "source_length": "S: how many tokens the example source has (the encoder's sequence length).",
    "target_length": "T: how many tokens the example target input has (the decoder's sequence length).",
    # training
    "task": "What the model must learn. Each toy task has an attention picture to look for: copy a diagonal, reverse "
    "an anti-diagonal, sort a permutation.",
    "steps": "Steps: how many batches the optimizer learns from. More = more learning and more time; training can "
    "stop earlier at the exact-match target.",
    "batch_size": "Batch size: sequences a step. Larger = smoother gradients and more work per step; very small "
    "batches make the loss curve noisy.",
    "learning_rate": "Learning rate: the size of each optimizer step (the peak, after warmup). Too high: spikes and "
    "divergence; too low: the loss barely moves.",
    "warmup": "Warmup: the first steps raise the learning rate linearly from 0 to its peak, while Adam's running "
    "averages are still noisy. 0 = start at full speed (risky with a high rate).",
    "schedule": "After warmup the learning rate decays: noam (the paper) as 1/√step, cosine smoothly down to 0 at the "
    "last step (it finishes copy faster here).",
    "noam": "Noam schedule (Section 5.3): linear warmup, then decay as 1/√step.",
    "adamw": "AdamW: Adam (a step per weight, scaled by running averages of its gradient) with weight decay applied "
    "separately; the optimizer both training loops use.",
    "label_smoothing": "Label smoothing: the target gives this share of probability to the wrong tokens instead of "
    "all to the right one. The paper uses 0.1 (Section 5.4): 'This hurts perplexity, as the model learns to be more "
    "unsure, but improves accuracy and BLEU score.' Here it slows exact copying, and the loss can no longer reach 0.",
    "eval_every": "Every this many steps the model decodes the held-out sequences by itself (greedy) and scores exact "
    "match; more often = a finer curve, slower training.",
    "stop_at": "Stop once this share of held-out sequences is decoded exactly right; 0 = train all the steps.",
    "teacher_forcing": "Teacher forcing: in training the decoder reads the true previous tokens, not its own guesses, "
    "and predicts all positions at once.",
    "max_length": "Max length: longer texts are cut to this many word pieces. Longer = more context, slower (attention "
    "grows with the square of the length).",
    "epochs": "Epochs: how many times training goes through every training example.",
    "max_examples": "How many examples to use in all; a share of them is held out for testing (the line under the "
    "form says how many).",
    "max_steps": "Stop after this many steps even if the epochs are not done (a time box); 0 = no cap.",
    "split": "The train/test split: a share of the examples is held out (stratified by label, seeded) and scored "
    "before and after; the model never trains on them.",
    "loop": "Plain PyTorch loop: forward, loss, backward, clip, step, written out. Hugging Face Trainer: the same "
    "steps run by the library. Same optimizer, schedule and results.",
    "run_name": "The folder under weights/ where the run is saved; it appears in every page's model picker.",
    # decoding
    "strategy": "Greedy: always the most likely next token. Beam: keep the k best prefixes and pick the best whole "
    "output. Sample: draw the next token at random from the model's probabilities.",
    "beam_width": "Beam width (k): how many partial outputs are kept at each step. 1 = greedy; larger = a wider search, "
    "slower.",
    "beam_score": "Beam score: the hypothesis's total log-probability divided by a length penalty ((5 + length) / 6)^α, "
    "α = 0.6; closer to 0 is better.",
    "length_penalty": "Length penalty α: 0 compares raw log-probabilities (favours short outputs); larger α favours "
    "longer ones.",
    "temperature": "Temperature divides the scores before the softmax: below 1 sharpens towards greedy, above 1 "
    "flattens towards random choices.",
    "top_k": "Top-k: sample only among the k most likely tokens (0 = all); cuts off unlikely, odd choices.",
    "seed": "The sampling seed is fixed, so the same input and settings draw the same tokens each time (and Back then "
    "Next repeats a step). Change the temperature to see other draws.",
    "show_top": "How many of the most likely next tokens to show, with their probabilities.",
    "cross_heads": "Show every head of every layer, or one head: each row is where one head looked in the source for "
    "this step.",
    # inspect and compare
    "kind": "Encoder self-attention: source tokens look at each other. Decoder self-attention: the output looks at "
    "itself, masked so it never sees the future. Cross-attention: the output looks at the source.",
    "layer": "Which block (0 = nearest the input). Lower layers often find simple patterns, later ones combine them.",
    "head": "One head's weights, or the mean over the heads of this layer (a mean can blur two sharp heads).",
    "follow": "Its row: where this token looks. Its column: which tokens look at it.",
    "pca_table": "Encoder input: the source embedding table. Decoder input: the target one (also the output layer "
    "when embeddings are tied).",
    "cls_sep": "[CLS] and [SEP]: special tokens BERT adds at the start and end; [CLS]'s final vector feeds the "
    "classifier.",
    "macro_f1": "Macro-F1: the F1 score of each label, averaged; unlike accuracy it drops when one label is never "
    "predicted.",
    "broken_recipe": "What goes wrong: a learning rate 250× too high without warmup or clipping, or embeddings that "
    "drown the positional encoding.",
    "demo_steps": "Steps each recipe trains; 200 shows the difference in about 20 s.",
    "compare_runs": "Pick two of your runs: their curves are drawn together and the same input is decoded by both.",
    "timed_passes": "How many forward passes are timed (after one warm-up pass); more = a steadier timing.",
}


# -- Figure 1 of the paper, with our module names -------------------------------------------------
def figure_1_dot(n_encoder: int = 2, n_decoder: int = 2, norm_first: bool = False) -> str:
    """Figure 1 as a graphviz DOT string: each box names the `model_zoo.scratch` class that computes it."""
    norm = "pre-norm" if norm_first else "post-norm"
    return f"""
digraph figure1 {{
  rankdir=BT; newrank=true; nodesep=0.3; ranksep=0.28;
  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=14, fillcolor="#f0f0f0", color="#888888"];
  edge [color="#555555", arrowsize=0.6];
  src [label="source tokens (B, S)", shape=plaintext, style="", fontsize=14];
  tgt [label="target so far: <bos> y1 .. (B, T)", shape=plaintext, style="", fontsize=14];
  src_emb [label="Embeddings × √D\\nlayers.Embeddings", fillcolor="#fde7d0"];
  tgt_emb [label="Embeddings × √D\\nlayers.Embeddings", fillcolor="#fde7d0"];
  src_pe [label="+ PositionalEncoding\\nlayers.PositionalEncoding", fillcolor="#fff3c4"];
  tgt_pe [label="+ PositionalEncoding\\nlayers.PositionalEncoding", fillcolor="#fff3c4"];
  subgraph cluster_enc {{
    label="EncoderBlock × {n_encoder}  (layers.Encoder, {norm})"; fontname="Helvetica"; fontsize=14;
    style="rounded"; color="#0072b2";
    enc_att [label="MultiHeadAttention (self)\\n+ residual, LayerNorm", fillcolor="#d6eaf8"];
    enc_ff [label="FeedForward\\n+ residual, LayerNorm", fillcolor="#d5f5e3"];
  }}
  subgraph cluster_dec {{
    label="DecoderBlock × {n_decoder}  (layers.Decoder, {norm})"; fontname="Helvetica"; fontsize=14;
    style="rounded"; color="#d55e00";
    dec_self [label="MultiHeadAttention (masked self)\\n+ residual, LayerNorm", fillcolor="#d6eaf8"];
    dec_cross [label="MultiHeadAttention (cross: keys, values\\nfrom the encoder) + residual, LayerNorm", fillcolor="#d6eaf8"];
    dec_ff [label="FeedForward\\n+ residual, LayerNorm", fillcolor="#d5f5e3"];
  }}
  linear [label="Linear (generator)\\nTransformer.generator", fillcolor="#e8daef"];
  softmax [label="Softmax\\nnext-token probabilities (B, T, V)", fillcolor="#e8daef"];
  src -> src_emb -> src_pe -> enc_att -> enc_ff;
  tgt -> tgt_emb -> tgt_pe -> dec_self -> dec_cross -> dec_ff -> linear -> softmax;
  enc_ff -> dec_cross [label=" memory (B, S, D)", fontsize=13, fontname="Helvetica", color="#0072b2"];
}}
"""


def figure_1(n_encoder: int = 2, n_decoder: int = 2, norm_first: bool = False) -> None:
    """Draw Figure 1 with our module names (graphviz, drawn in the browser)."""
    st.graphviz_chart(figure_1_dot(n_encoder, n_decoder, norm_first))
