"""Insight views: rollout and Jensen-Shannon distance against hand computations, heads picked across
layers, attention snapshots saved by training, and the step where the attention snaps."""

import math

import pytest
import torch

from model_zoo import Transformer
from model_zoo.toy.runs import AttentionSnapshots, load_attention_snapshots, save_attention_snapshots
from model_zoo.toy.tasks import make_task
from model_zoo.toy.train_config import TrainConfig
from model_zoo.toy.training import resumable, train
from model_zoo.views import attention

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _stack(*layers):
    """Hand-made self-attention: each layer a list of (T, T) head maps -> {"encoder_self": [(1, H, T, T)]}."""
    return {"encoder_self": [torch.tensor(heads, dtype=torch.float32)[None] for heads in layers]}


def test_rollout_of_a_hand_made_stack_equals_the_hand_computation():
    stack = _stack(
        [[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [0.5, 0.5]]],  # layer 0: heads' mean [[.5, .5], [.5, .5]]
        [[[1.0, 0.0], [1.0, 0.0]]],  # layer 1 (one head): everything looks at token 0
    )
    # A'_0 = 0.5 mean + 0.5 I = [[.75, .25], [.25, .75]]; A'_1 = [[1, 0], [.5, .5]];
    # R_1 = A'_1 A'_0 = [[.75, .25], [.5, .5]].
    rolled = attention.attention_rollout(stack)
    torch.testing.assert_close(rolled[0], torch.tensor([[0.75, 0.25], [0.25, 0.75]]))
    torch.testing.assert_close(rolled[1], torch.tensor([[0.75, 0.25], [0.5, 0.5]]))
    frame = attention.rollout_map(stack, "encoder_self", ["a", "b"])
    assert frame["weight"].tolist() == pytest.approx([0.75, 0.25, 0.5, 0.5])
    assert set(frame["head"]) == {"rollout"}


def test_rollout_refuses_cross_attention():
    with pytest.raises(ValueError, match="square self-attention"):
        attention.attention_rollout({"cross": [torch.ones(1, 1, 2, 3) / 3]}, "cross")


def test_js_distance_is_zero_for_identical_maps_and_one_for_disjoint_rows():
    rows = torch.tensor([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    assert attention.js_distance(rows, rows).tolist() == [0.0, 0.0]
    # base 2: disjoint one-hot rows are 1 apart (in nats the divergence would be ln 2)
    assert attention.js_distance(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])).item() == pytest.approx(1.0)
    # [1, 0] against [.5, .5]: m = [.75, .25]
    divergence = 0.5 * math.log2(1 / 0.75) + 0.5 * (0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(0.5 / 0.25))
    assert attention.js_distance(torch.tensor([1.0, 0.0]), torch.tensor([0.5, 0.5])).item() == pytest.approx(
        math.sqrt(divergence), abs=1e-6
    )


def test_attention_change_ranks_heads_by_mean_js_distance():
    same = [[0.5, 0.5], [0.5, 0.5]]
    before = _stack([same, same])
    after = _stack([same, [[1.0, 0.0], [0.0, 1.0]]])  # head 1 moved: each row by JS([.5, .5], one-hot)
    frame = attention.attention_change([(before, after), (before, before)])
    moved = attention.js_distance(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0])).item()
    assert frame["layer_head"].tolist() == ["L0 H1", "L0 H0"]
    assert frame["rank"].tolist() == [1, 2]
    assert frame["js_distance"].tolist() == pytest.approx([moved / 2, 0.0])  # moved in one of two inputs
    assert frame["inputs"].tolist() == [2, 2] and frame["rows"].tolist() == [4, 4]


def test_attention_difference_is_after_minus_before():
    before = _stack([[[0.5, 0.5], [0.5, 0.5]]])
    after = _stack([[[0.9, 0.1], [0.5, 0.5]]])
    frame = attention.attention_difference(before, after, "encoder_self", 0, ["a", "b"], ["a", "b"], head=0)
    assert frame["difference"].tolist() == pytest.approx([0.4, -0.4, 0.0, 0.0])


def test_selected_heads_keep_the_picking_order_and_the_models_weights():
    torch.manual_seed(0)
    layers = [torch.rand(1, 3, 2, 4).softmax(-1) for _ in range(2)]
    frame = attention.selected_heads({"cross": layers}, "cross", [(1, 2), (0, 0)], ["p", "q"], list("wxyz"))
    assert list(dict.fromkeys(frame["layer_head"])) == ["L1 H2", "L0 H0"]
    picked = frame[frame["layer_head"] == "L1 H2"]["weight"].tolist()
    assert picked == pytest.approx(layers[1][0, 2].flatten().tolist())
    with pytest.raises(ValueError, match="head=3 is out of range"):
        attention.selected_heads({"cross": layers}, "cross", [(0, 3)], ["p", "q"], list("wxyz"))


def _diagonal_snapshots(task: str, target: list[int]) -> AttentionSnapshots:
    """Three snapshot steps of a 1-layer, 2-head model on source 4 5 6: uniform, then head 1 puts
    0.4 and then 0.8 of each row on the right source token (head 0 stays uniform)."""
    source = [4, 5, 6]
    right = attention.alignment_mask(source, [1, *target]).float()  # (3, 3)
    snapshots = AttentionSnapshots(task, source, [1, *target])
    for step, share in ((0, None), (100, 0.4), (200, 0.8)):
        cross = torch.full((1, 2, 4, 3), 1 / 3)  # (L, H, T, S): rows <bos> y1 y2 y3
        if share is not None:
            cross[0, 1, :3] = share * right + (1 - share) / 2 * (1 - right)
        snapshots.add(step, {"cross": cross})
    return snapshots


@pytest.mark.parametrize(("task", "target"), [("copy", [4, 5, 6]), ("reverse", [6, 5, 4])])
def test_snap_step_is_the_first_step_a_head_reaches_the_threshold(task, target):
    shares = attention.alignment_shares(_diagonal_snapshots(task, target))
    by_step = shares[shares["layer_head"] == "L0 H1"].set_index("step")["share"]
    assert by_step.to_dict() == pytest.approx({0: 1 / 3, 100: 0.4, 200: 0.8})
    assert shares[shares["layer_head"] == "L0 H0"]["share"].tolist() == pytest.approx([1 / 3] * 3)
    snap = attention.snap_step(shares, threshold=0.5)
    assert (snap.step, snap.layer, snap.head) == (200, 0, 1) and snap.share == pytest.approx(0.8)
    assert attention.snap_step(shares, threshold=0.3).step == 0  # uniform over 3 tokens is already 1/3
    assert attention.snap_step(shares, threshold=0.9) is None


def test_alignment_mask_is_the_diagonal_for_copy_and_the_anti_diagonal_for_reverse():
    assert attention.alignment_mask([4, 5, 6], [1, 4, 5, 6]).tolist() == torch.eye(3, dtype=torch.bool).tolist()
    assert attention.alignment_mask([4, 5, 6], [1, 6, 5, 4]).tolist() == torch.eye(3, dtype=torch.bool).flip(1).tolist()


def test_snapshots_round_trip_through_safetensors(tmp_path):
    snapshots = _diagonal_snapshots("copy", [4, 5, 6])
    save_attention_snapshots(tmp_path, snapshots)
    loaded = load_attention_snapshots(tmp_path)
    assert (loaded.task, loaded.steps, loaded.source_ids, loaded.target_ids) == (
        "copy",
        [0, 100, 200],
        [4, 5, 6],
        [1, 4, 5, 6],
    )
    for a, b in zip(snapshots.maps, loaded.maps, strict=True):
        torch.testing.assert_close(a["cross"], b["cross"], rtol=0, atol=0)
    assert load_attention_snapshots(tmp_path / "nothing") is None
    (tmp_path / "attention_snapshots.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable attention snapshots file"):
        load_attention_snapshots(tmp_path)


def test_training_saves_the_probes_attention_at_every_evaluation_and_resume_adds_to_it(tmp_path):
    task = make_task("reverse", n_symbols=5, max_len=5, n_heldout=32)
    torch.manual_seed(0)
    model = Transformer(task.model_config(d_model=16, n_heads=2, n_encoder_layers=1, n_decoder_layers=1, d_ff=32))
    cfg = TrainConfig(steps=20, batch_size=16, eval_every=10, checkpoint_every=10, layer_metrics=False)
    train(model, task, cfg, checkpoint_dir=tmp_path / "rev")
    snapshots = load_attention_snapshots(tmp_path / "rev")
    assert snapshots.task == "reverse" and snapshots.steps == [0, 10, 20]
    source, target = snapshots.source_ids, snapshots.target_ids
    assert len(source) == 5 and target[1:] == source[::-1]  # the probe: a longest held-out example, reversed
    assert snapshots.maps[0]["cross"].shape == (1, 2, 6, 5)  # (L, H, T, S)
    assert snapshots.maps[0]["encoder_self"].shape == (1, 2, 5, 5)
    with torch.no_grad():  # the last snapshot is the trained model's own attention on the probe
        final = model.eval()(torch.tensor([source]), torch.tensor([target]), return_attention=True).attentions
    torch.testing.assert_close(snapshots.maps[-1]["cross"], torch.cat(final["cross"]).cpu())  # (L, H, T, S)
    run, cfg = resumable(tmp_path / "rev", steps=30)
    train(run.model, run.make_task(), cfg, checkpoint_dir=run.path, resume=True)
    assert load_attention_snapshots(tmp_path / "rev").steps == [0, 10, 20, 30]


def test_fine_tuning_attention_change_is_zero_against_itself_and_positive_after_training():
    from hf_tiny import trained_run

    from model_zoo.hf.attention_change import finetune_attention_change
    from model_zoo.hf.inference import load_before, load_finetuned

    run = trained_run("bert")[0].run_dir
    before, after = load_before(run), load_finetuned(run)
    texts = ["the film was good", "a dull and tired plot", "very witty", "rotten acting"]
    unchanged = finetune_attention_change(after, after, texts)
    assert unchanged["js_distance"].max() == pytest.approx(0.0, abs=1e-6)
    assert len(unchanged) == 2 * 2 and set(unchanged["inputs"]) == {4}  # 2 layers × 2 heads, encoder only
    moved = finetune_attention_change(before, after, texts, n=2)
    assert set(moved["inputs"]) == {2}
    assert moved["js_distance"].iloc[0] > 0 and moved["rank"].tolist() == [1, 2, 3, 4]
    with pytest.raises(ValueError, match="No held-out sentences"):
        finetune_attention_change(before, after, ["", "  "])
