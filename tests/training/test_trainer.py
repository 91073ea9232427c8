"""The training loop: schedule, optimizer groups, evaluation, checkpoints, exact resume, cancel."""

from __future__ import annotations

import json
import math
import random
import threading

import pytest
import torch

from chatapp.model import ModelConfig, Transformer
from chatapp.model.lora import LoRAConfig
from chatapp.training.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint
from chatapp.training.dataset import IGNORE_INDEX, TokenBlocks, pack_documents
from chatapp.training.schedule import WarmupCosine
from chatapp.training.trainer import TrainConfig, Trainer, evaluate, param_groups

VOCAB, EOS, BLOCK = 32, 31, 16


def tiny_model(seed: int = 0, tie: bool = False) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(ModelConfig(arch="llama", vocab_size=VOCAB, dim=32, n_layers=2, n_heads=2,
                                   intermediate_size=64, max_seq_len=32, tie_embeddings=tie)).eval()


def corpus(n_docs: int, seed: int) -> TokenBlocks:
    """Documents made of 5 fixed phrases (one "language"); `seed` picks which documents."""
    phrases = [[(7 * p + 3 * i + 1) % EOS for i in range(4)] for p in range(5)]
    rng = random.Random(seed)
    docs = [[t for _ in range(6) for t in rng.choice(phrases)] for _ in range(n_docs)]
    return TokenBlocks.from_blocks(pack_documents(docs, BLOCK, EOS))


TRAIN = corpus(20, seed=0)  # 28 blocks
VAL = corpus(4, seed=1)


def config(**overrides) -> TrainConfig:
    base = dict(lr=5e-3, warmup_steps=2, max_steps=8, batch_size=3, grad_accum=2, eval_every=4, block_size=BLOCK,
                lora=LoRAConfig(r=4, alpha=8, dropout=0.1, target_modules=["q_proj", "v_proj", "up_proj"]))
    return TrainConfig(**{**base, **overrides})


# -- schedule and config ------------------------------------------------------------------
def test_schedule_values_at_known_steps():
    s = WarmupCosine(lr=1.0, warmup_steps=4, total_steps=14, min_lr=0.1)
    assert [s(i) for i in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert s(4) == 1.0  # cosine starts at the peak
    assert s(9) == pytest.approx(0.55)  # half way: (1 + 0.1) / 2
    assert s(14) == pytest.approx(0.1) and s(100) == 0.1
    assert s(6) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 0.2)))
    assert WarmupCosine(2.0, 0, 10)(0) == 2.0
    with pytest.raises(ValueError):
        WarmupCosine(1.0, 0, 10, min_lr=2.0)


@pytest.mark.parametrize("kwargs", [dict(method="qlora"), dict(lr=0), dict(batch_size=0), dict(betas=(0.9, 1.0)),
                                    dict(max_steps=10, epochs=1.0), dict(early_stop_patience=2, eval_every=0),
                                    dict(grad_clip=-1.0), dict(lora={"r": 0})])
def test_config_validates_itself(kwargs):
    with pytest.raises(ValueError):
        TrainConfig(**kwargs)


def test_config_round_trips_through_json_and_counts_steps():
    cfg = config()
    again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg and isinstance(again.lora, LoRAConfig) and again.betas == cfg.betas
    assert TrainConfig(epochs=2.0, batch_size=3, grad_accum=2).total_steps(28) == 10  # ceil(56 / 6)
    assert TrainConfig().total_steps(5) == 2  # one epoch of 5 blocks at 4 per step


def test_weight_decay_groups_skip_norms_biases_and_embeddings():
    model = tiny_model(tie=True)
    model.layers[0].attn.q_proj.bias = torch.nn.Parameter(torch.zeros(32))  # one bias to classify
    groups, names = param_groups(model, weight_decay=0.1)
    decay, no_decay = names
    assert groups[0]["weight_decay"] == 0.1 and groups[1]["weight_decay"] == 0.0
    assert "layers.0.attn.q_proj.weight" in decay and "layers.1.mlp.down_proj.weight" in decay
    assert {"tok_embeddings.weight", "norm.weight", "layers.0.attn_norm.weight",
            "layers.0.attn.q_proj.bias"} <= set(no_decay)
    assert not any("embeddings" in n or "norm" in n or n.endswith("bias") for n in decay)
    assert "lm_head.weight" not in decay + no_decay  # tied: it is the embedding, counted once


# -- evaluation ---------------------------------------------------------------------------
def test_evaluate_is_token_weighted_and_keeps_the_mode():
    model = tiny_model().train()
    loss, ppl = evaluate(model, VAL, batch_size=3)
    assert model.training and ppl == pytest.approx(math.exp(loss))
    with torch.no_grad():
        model.eval()
        logits = model(VAL.tokens[:, :-1])
        expected = torch.nn.functional.cross_entropy(logits.flatten(0, 1), VAL.tokens[:, 1:].flatten())
    assert loss == pytest.approx(expected.item(), rel=1e-5)
    assert loss == pytest.approx(math.log(VOCAB), rel=0.2)  # a random model is near uniform
    masked = TokenBlocks(VAL.tokens, torch.zeros_like(VAL.tokens, dtype=torch.bool))
    masked.loss_mask[:, -1] = True  # only the last target of each row counts
    inputs, labels = masked.batch(torch.arange(len(masked)))
    assert (labels != IGNORE_INDEX).sum() == len(masked)
    with torch.no_grad():
        only_last = torch.nn.functional.cross_entropy(model(inputs)[:, -1], labels[:, -1])
    assert evaluate(model, masked)[0] == pytest.approx(only_last.item(), rel=1e-5)


# -- the loop -----------------------------------------------------------------------------
def test_progress_events_and_checkpoint_contents(tmp_path):
    events = []
    result = Trainer(tiny_model(), config(save_every=3), TRAIN, VAL, tmp_path / "ckpt", events.append).fit()
    assert result.reason == "completed" and result.step == 8 and sorted(result.losses) == list(range(1, 9))
    kinds = [e["event"] for e in events]
    assert kinds[0] == "eval" and kinds[-1] == "done" and kinds.count("step") == 8
    steps = [e for e in events if e["event"] == "step"]
    assert [e["step"] for e in steps] == list(range(1, 9))
    assert steps[0]["lr"] == pytest.approx(2.5e-3) and steps[1]["lr"] == pytest.approx(5e-3)
    assert all(e["tokens_per_s"] > 0 and e["eta_s"] >= 0 and e["loss"] > 0 for e in steps)
    assert "val_ppl" in steps[3] and "val_ppl" in steps[7] and "val_ppl" not in steps[4]
    assert [e["step"] for e in result.evals] == [0, 4, 8]
    json.dumps(events)  # ready for JSON lines

    # Saved at 3 and 6, at the end, and only the newest two kept; no temp folders left.
    assert [p.name for p in list_checkpoints(tmp_path / "ckpt")] == ["step-00000006", "step-00000008"]
    assert not list((tmp_path / "ckpt").glob(".*"))
    ckpt = load_checkpoint(latest_checkpoint(tmp_path / "ckpt"))
    assert ckpt.step == 8 and ckpt.config == config(save_every=3).to_dict()
    assert set(ckpt.trainable) == {f"layers.{i}.{m}.lora_{w}" for i in range(2)
                                   for m in ("attn.q_proj", "attn.v_proj", "mlp.up_proj") for w in "AB"}
    assert ckpt.optimizer["state"][0]["exp_avg"].shape == ckpt.trainable[ckpt.optimizer_param_names[0][0]].shape
    assert ckpt.state["position"] == 8 * 3 * 2 and ckpt.state["evals"] == result.evals


@pytest.mark.parametrize("method", ["lora", "full"])
def test_resume_repeats_the_uninterrupted_run_exactly(tmp_path, method):
    cfg = config(method=method, save_every=4, keep_checkpoints=0, max_steps=10, lr=1e-3 if method == "full" else 5e-3)
    full_model = tiny_model(tie=method == "full")
    whole = Trainer(full_model, cfg, TRAIN, VAL, tmp_path / "a").fit()
    assert (tmp_path / "a" / "step-00000004").is_dir()

    resumed_model = tiny_model(tie=method == "full")
    # Use the RNG in between, as a real process would differ: the checkpoint must restore it.
    torch.rand(100)
    rest = Trainer(resumed_model, cfg, TRAIN, VAL, tmp_path / "b").fit(resume_from=tmp_path / "a" / "step-00000004")
    assert sorted(rest.losses) == list(range(5, 11))
    assert [rest.losses[s] for s in range(5, 11)] == [whole.losses[s] for s in range(5, 11)]  # bit for bit
    assert rest.evals == whole.evals
    for (name, a), (_, b) in zip(full_model.named_parameters(), resumed_model.named_parameters()):
        assert torch.equal(a, b), name


def test_cancel_leaves_a_checkpoint_that_resumes(tmp_path):
    reference = Trainer(tiny_model(), config(), TRAIN, VAL).fit()

    cancel = threading.Event()

    def progress(event):
        if event["event"] == "step" and event["step"] == 3:
            cancel.set()  # as the window's Stop button would, from another thread

    cut = Trainer(tiny_model(), config(), TRAIN, VAL, tmp_path, progress, cancel).fit()
    assert cut.reason == "cancelled" and cut.step == 3
    assert cut.checkpoint == tmp_path / "step-00000003" and cut.checkpoint.is_dir()
    assert [cut.losses[s] for s in (1, 2, 3)] == [reference.losses[s] for s in (1, 2, 3)]

    calls = iter(range(100))
    done = Trainer(tiny_model(), config(), TRAIN, VAL, tmp_path, cancel=lambda: next(calls) > 100).fit(
        resume_from=latest_checkpoint(tmp_path))
    assert done.reason == "completed" and done.step == 8
    assert [done.losses[s] for s in range(4, 9)] == [reference.losses[s] for s in range(4, 9)]


def test_resume_refuses_other_settings_or_data(tmp_path):
    Trainer(tiny_model(), config(max_steps=2), TRAIN, None, tmp_path).fit()
    ckpt = latest_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="lr"):
        Trainer(tiny_model(), config(max_steps=2, lr=1e-2), TRAIN).fit(resume_from=ckpt)
    with pytest.raises(ValueError, match="data changed"):
        Trainer(tiny_model(), config(max_steps=2), corpus(20, seed=5)).fit(resume_from=ckpt)
    # Settings that do not change the arithmetic may differ.
    result = Trainer(tiny_model(), config(max_steps=2, save_every=1, gradient_checkpointing=True),
                     TRAIN).fit(resume_from=ckpt)
    assert result.step == 2 and result.losses == {}


def test_early_stop_when_validation_stops_improving():
    # Learning the training phrases makes unrelated random tokens less likely, step after step.
    noise = TokenBlocks(torch.randint(0, VOCAB, (6, BLOCK + 1), generator=torch.Generator().manual_seed(9)))
    cfg = config(lr=3e-2, warmup_steps=0, max_steps=60, eval_every=2, early_stop_patience=2,
                 lora=LoRAConfig(r=8, alpha=16, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"]))
    result = Trainer(tiny_model(), cfg, TRAIN, noise).fit()
    assert result.reason == "early_stop" and result.step < 60
    losses = [e["val_loss"] for e in result.evals]
    assert result.best_val_loss == min(losses) and result.best_step == result.evals[-3]["step"]
    assert losses[-2] >= result.best_val_loss and losses[-1] >= result.best_val_loss


NOISE = TokenBlocks(torch.randint(0, VOCAB, (6, BLOCK + 1), generator=torch.Generator().manual_seed(9)))
OVERFIT = dict(lr=3e-2, warmup_steps=0, max_steps=60, eval_every=2,
               lora=LoRAConfig(r=8, alpha=16, target_modules=["q_proj", "v_proj", "up_proj", "down_proj"]))


def test_early_stop_with_restore_best_hands_back_the_best_weights(tmp_path):
    model = tiny_model()
    result = Trainer(model, config(**OVERFIT, early_stop_patience=2, restore_best=True), TRAIN, NOISE,
                     tmp_path).fit()
    assert result.reason == "early_stop" and result.restored_step == result.best_step < result.step
    # The model now scores exactly as at the best evaluation, not as at the last one.
    loss, _ = evaluate(model, NOISE, 8)
    assert loss == pytest.approx(result.best_val_loss, abs=1e-6)
    assert result.evals[-1]["val_loss"] > result.best_val_loss + 1e-3
    # The checkpoint keeps the state the loop ended in (for a resume) and the best weights beside it.
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.step == result.step and ckpt.best is not None
    params = dict(model.named_parameters())
    assert all(torch.equal(ckpt.best[n], params[n]) for n in ckpt.best)
    assert any(not torch.equal(ckpt.trainable[n], params[n]) for n in ckpt.trainable)


def test_without_restore_best_the_last_weights_stay():
    model = tiny_model()
    result = Trainer(model, config(**OVERFIT, early_stop_patience=2), TRAIN, NOISE).fit()
    assert result.reason == "early_stop" and result.restored_step is None
    loss, _ = evaluate(model, NOISE, 8)
    assert loss == pytest.approx(result.evals[-1]["val_loss"], abs=1e-6)


def test_restore_best_survives_a_resume(tmp_path):
    cfg = config(**{**OVERFIT, "max_steps": 16}, save_every=4, keep_checkpoints=0, restore_best=True)
    whole_model = tiny_model()
    whole = Trainer(whole_model, cfg, TRAIN, NOISE, tmp_path / "a").fit()
    assert whole.restored_step is not None and whole.restored_step < 16
    resumed_model = tiny_model()
    # Resume after the best evaluation: its weights must come from the checkpoint, not memory.
    start = min(s for s in (4, 8, 12) if s > whole.restored_step)
    rest = Trainer(resumed_model, cfg, TRAIN, NOISE, tmp_path / "b").fit(
        resume_from=tmp_path / "a" / f"step-{start:08d}")
    assert rest.restored_step == whole.restored_step
    for (name, a), (_, b) in zip(whole_model.named_parameters(), resumed_model.named_parameters()):
        assert torch.equal(a, b), name


def test_gradient_checkpointing_changes_nothing_but_memory():
    plain = Trainer(tiny_model(), config(max_steps=3), TRAIN).fit()
    model = tiny_model()
    checkpointed = Trainer(model, config(max_steps=3, gradient_checkpointing=True), TRAIN).fit()
    for s in (1, 2, 3):
        assert checkpointed.losses[s] == pytest.approx(plain.losses[s], abs=1e-6)
    assert all("forward" not in vars(block) for block in model.layers)  # the hook is removed


def test_full_fine_tuning_trains_every_parameter():
    model = tiny_model()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = Trainer(model, config(method="full", lr=1e-3, max_steps=4), TRAIN, VAL).fit()
    assert result.evals[-1]["val_loss"] < result.evals[0]["val_loss"]
    assert all(not torch.equal(before[n], p) for n, p in model.named_parameters())
    assert not model.training  # handed back in the mode it came in


@pytest.mark.parametrize("method", ["lora", "full"])
def test_training_runs_its_products_on_onednn_with_the_same_losses(monkeypatch, method):
    from chatapp.model import linear as linear_module

    if not linear_module.onednn_available():
        pytest.skip("this PyTorch build has no oneDNN linear op")
    calls = []
    real = linear_module.onednn_linear
    monkeypatch.setattr(linear_module, "onednn_linear", lambda *a: calls.append(1) or real(*a))
    cfg = config(max_steps=4, method=method, lr=1e-3 if method == "full" else 5e-3)
    fast = Trainer(tiny_model(), cfg, TRAIN, VAL).fit()
    assert calls  # the products (forward and backward) went through oneDNN
    monkeypatch.setattr(linear_module, "onednn_available", lambda: False)
    calls.clear()
    plain = Trainer(tiny_model(), cfg, TRAIN, VAL).fit()
    assert not calls
    for s in (1, 2, 3, 4):
        assert fast.losses[s] == pytest.approx(plain.losses[s], abs=1e-5)
    assert fast.evals[-1]["val_loss"] == pytest.approx(plain.evals[-1]["val_loss"], abs=1e-5)


# -- time budget --------------------------------------------------------------------------
class _Clock:
    """time.monotonic / time.perf_counter for the trainer: advanced only by training steps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    perf_counter = monotonic


def _timed(monkeypatch, trainer: Trainer, seconds_per_step) -> _Clock:
    import chatapp.training.trainer as trainer_module

    clock = _Clock()
    monkeypatch.setattr(trainer_module, "time", clock)
    real_step = trainer._train_step

    def step():
        clock.now += seconds_per_step(trainer.step)
        return real_step()

    monkeypatch.setattr(trainer, "_train_step", step)
    return clock


def test_a_deadline_resizes_the_run_from_its_first_steps(monkeypatch):
    trainer = Trainer(tiny_model(), config(max_steps=20, eval_every=0), TRAIN)
    clock = _timed(monkeypatch, trainer, lambda step: 1.0)
    trainer.deadline = clock.now + 10.5
    lrs = []
    trainer.progress = lambda e: lrs.append(e["lr"]) if e["event"] == "step" else None
    result = trainer.fit()
    # 3 steps measured at 1 s each, 7.5 s left: 7 more steps, the schedule decaying over 10.
    assert result.reason == "completed" and result.step == result.total_steps == 10
    assert clock.now <= trainer.deadline
    assert trainer.schedule.total_steps == 10 and lrs[-1] < 0.2 * config().lr  # decayed (20 steps: ~0.6)


def _totals(trainer: Trainer) -> list[int]:
    """The run's length as each step event reports it (filled as the trainer runs)."""
    totals: list[int] = []
    trainer.progress = lambda e: totals.append(e["total_steps"]) if e["event"] == "step" else None
    return totals


def test_a_run_cut_by_slow_first_steps_grows_back_to_its_length(monkeypatch):
    """The first steps are the slowest (one-time costs): the re-size they cause is revised as the
    steps speed up, up to the length the run was given, and the deadline still holds."""
    trainer = Trainer(tiny_model(), config(max_steps=100, eval_every=0), TRAIN)
    clock = _timed(monkeypatch, trainer, lambda step: 4.0 if step < 3 else 1.0)
    trainer.deadline = clock.now + 72.5
    totals = _totals(trainer)
    result = trainer.fit()
    # after 3 steps (12 s, measured at 4 s) 15 more fit: 18; at step 6 the median of the steps
    # after the first is 1 s, 57.5 s are left: 63 steps in all
    assert totals[2] == 18 and totals[5] == 63
    assert result.reason == "completed" and result.step == result.total_steps == 63
    assert clock.now <= trainer.deadline and trainer.schedule.total_steps == 63


def test_a_resized_run_never_grows_past_its_given_length(monkeypatch):
    trainer = Trainer(tiny_model(), config(max_steps=30, eval_every=0), TRAIN)
    clock = _timed(monkeypatch, trainer, lambda step: 3.0 if step < 3 else 0.5)
    trainer.deadline = clock.now + 60.0
    totals = _totals(trainer)
    result = trainer.fit()
    # cut to 20 after 3 steps at 3 s; at 0.5 s a step 105 would fit: back to the 30 it was given
    assert totals[2] == 20 and result.step == result.total_steps == 30 and clock.now <= trainer.deadline


def test_a_run_past_half_its_length_does_not_grow(monkeypatch):
    """Growing late would raise a learning rate the schedule has already decayed."""
    trainer = Trainer(tiny_model(), config(max_steps=40, eval_every=0), TRAIN)
    clock = _timed(monkeypatch, trainer, lambda step: 4.0 if step < 3 else 1.0)
    trainer.deadline = clock.now + 24.5  # after 3 steps (12 s at 4 s each) 3 more fit: 6
    result = trainer.fit()
    assert result.total_steps == 6 and result.step == 6 and clock.now <= trainer.deadline


def test_steps_that_slow_down_stop_before_the_deadline(monkeypatch):
    trainer = Trainer(tiny_model(), config(max_steps=20, eval_every=0), TRAIN)
    clock = _timed(monkeypatch, trainer, lambda step: 1.0 if step < 3 else 3.0)  # another job takes the CPU
    trainer.deadline = clock.now + 10.5
    result = trainer.fit()
    assert 3 < result.step < 10 and clock.now <= trainer.deadline
    # re-sized again as the steps slowed: the schedule ended where the steps did
    assert result.reason == "completed" and result.total_steps == result.step


def test_without_a_deadline_the_length_is_kept(monkeypatch):
    trainer = Trainer(tiny_model(), config(max_steps=6, eval_every=0), TRAIN)
    _timed(monkeypatch, trainer, lambda step: 100.0)
    assert trainer.fit().step == 6


def test_a_step_still_running_at_the_deadline_is_dropped(monkeypatch):
    """A step that collapses (another job takes the core) is stopped inside, at the deadline, and
    leaves the run as it was after the step before: weights, data position and RNG."""
    import chatapp.training.trainer as trainer_module

    clock = _Clock()
    monkeypatch.setattr(trainer_module, "time", clock)
    trainer = Trainer(tiny_model(), config(max_steps=6, eval_every=0), TRAIN)
    trainer.deadline = clock.now + 100.0

    def block_time(module, _args):  # 1 s per block forward; the 4th step's second block: 200 s
        clock.now += 200.0 if trainer.step == 3 and module is trainer.model.layers[1] else 1.0

    hooks = [block.register_forward_pre_hook(block_time) for block in trainer.model.layers]
    result = trainer.fit()
    for h in hooks:
        h.remove()
    assert result.reason == "time_budget" and result.step == 3 and sorted(result.losses) == [1, 2, 3]
    assert trainer.position == 3 * 3 * 2  # 3 steps of 2 micro-batches of 3 blocks: the 4th gave its blocks back
    assert all(p.grad is None for p in trainer.params)
    assert not any(h for b in trainer.model.layers for h in b._forward_hooks.values())  # the guard is gone
    rng = torch.get_rng_state()

    reference = Trainer(tiny_model(), config(max_steps=6, eval_every=0), TRAIN,
                        cancel=lambda: reference.step >= 3)
    assert reference.fit().step == 3
    assert torch.equal(rng, torch.get_rng_state())
    for (name, mine), (_, theirs) in zip(trainer.model.named_parameters(), reference.model.named_parameters()):
        assert torch.equal(mine, theirs), name


def test_the_final_evaluation_is_kept_inside_the_deadline(monkeypatch):
    trainer = Trainer(tiny_model(), config(max_steps=20, eval_every=0), TRAIN, VAL)
    clock = _timed(monkeypatch, trainer, lambda step: 1.0)
    real_eval = trainer._validation_loss

    def evaluation():
        clock.now += 4.0
        return real_eval()

    monkeypatch.setattr(trainer, "_validation_loss", evaluation)
    trainer.deadline = clock.now + 4.0 + 10.5  # the first evaluation, then 10.5 s
    result = trainer.fit()
    # 4 s of the 10.5 go to the final evaluation: 6 steps of 1 s.
    assert result.step == 6 and clock.now <= trainer.deadline
