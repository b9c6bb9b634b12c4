"""training/monitor.py by hand: the rollout's statistics, entropy and KL on the sampled tokens,
the speed figures, the TensorBoard writer; and every new key in a run's metrics.jsonl."""
import json
import math
import os
import sys
import types

import pytest
import torch

import train
from conftest import TINY
from model import ModelConfig, Transformer
from sample import generate, token_logprobs
from training import monitor
from training.launch import Dist


def one_process():
    return Dist(0, 1, torch.device("cpu"))


def test_rollout_stats_by_hand():
    # two groups of 2: rewards [1, 0 | 1, 1]; the second group is all equal
    #   mean 3/4, std sqrt(3/4 - 9/16) = sqrt(3/16) = 0.4330; groups_equal 1/2
    # responses (max_new_tokens 3, eos 9): [5, 9, pad] length 2 ended, [5, 6, 7] length 3 cut,
    #   [9, pad, pad] length 1 ended, [5, 6, 9] length 3 ended: mean 9/4, max 3, truncated 1/4
    rollout = types.SimpleNamespace(
        response_ids=torch.tensor([[5, 9, 0], [5, 6, 7], [9, 0, 0], [5, 6, 9]]),
        response_mask=torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0], [1, 1, 1]], dtype=torch.bool),
        prompt_mask=torch.tensor([[1, 1], [0, 1], [1, 1], [0, 1]], dtype=torch.bool))  # 6 prompt tokens
    s = monitor.rollout_stats(one_process(), rollout, torch.tensor([1.0, 0.0, 1.0, 1.0]), 2, 3, 9)
    assert s["reward"] == 0.75 and s["reward_std"] == pytest.approx(math.sqrt(3 / 16))
    assert s["groups_equal"] == 0.5
    assert (s["response_length"], s["response_length_max"], s["truncated"], s["n_tokens"]) == (2.25, 3, 0.25, 9)
    assert s["n_prompt_tokens"] == 6
    # several end ids (a list), and none: without an end id every full-length response is cut
    assert monitor.rollout_stats(one_process(), rollout, torch.ones(4), 2, 3, [7, 9])["truncated"] == 0
    assert monitor.rollout_stats(one_process(), rollout, torch.ones(4), 2, 3, None)["truncated"] == 0.5


def test_token_stats_by_hand():
    # k3 at lr = logp_ref - logp: lr = 0 -> 0; lr = log 2 -> 2 - log 2 - 1 = 0.3069; the masked
    # token (lr = 5) does not count: mean over 2 tokens 0.1534. Entropy: mean of 1.0 and 2.0 = 1.5
    mask = torch.tensor([[True, True, False]])
    logp = torch.tensor([[-1.0, -2.0, -3.0]])
    logp_ref = torch.tensor([[-1.0, -2.0 + math.log(2), 2.0]])
    entropy = torch.tensor([[1.0, 2.0, 9.0]])
    s = monitor.token_stats(one_process(), mask, logp, logp_ref, entropy)
    assert s["kl_ref"] == pytest.approx((2 - math.log(2) - 1) / 2)
    assert s["entropy"] == pytest.approx(1.5)


@pytest.mark.parametrize("kw", [{}, {"temperature": 0.7}, {"top_k": 3}, {"top_p": 0.8}])
def test_entropy_is_that_of_the_distribution_sampled_from(kw):
    # -sum p log p of the processed distribution at each response position, against the logits
    # of a plain forward pass; the log-probs are the same with and without entropy=True
    from sample import process
    torch.manual_seed(0)
    model = Transformer(ModelConfig(vocab_size=11, n_embd=16, n_layer=1, n_head=2, n_kv_head=1,
                                    intermediate_size=32, max_seq_len=32)).eval()
    r = generate(model, [[1, 2, 3], [4, 5]], 5, generator=torch.Generator().manual_seed(0), **kw)
    with torch.no_grad():
        out = token_logprobs(model, r, entropy=True, **kw)
        ids, mask = r.sequences()
        logits = model(ids, mask=mask)[:, r.prompt_ids.size(1) - 1:-1]  # (B, N, V) predicting each response token
        p = process(logits, **kw).softmax(-1)
        expected = -(p * p.clamp(min=1e-30).log()).sum(-1)
    torch.testing.assert_close(out.entropy[r.response_mask], expected[r.response_mask], atol=1e-5, rtol=1e-5)
    assert torch.equal(out.logp, token_logprobs(model, r, **kw).logp)
    assert token_logprobs(model, r, **kw).entropy is None


def test_speed_by_hand():
    # N = 1000 multiplying parameters, a step of 50 tokens, 6 forward-equivalents a token
    # (sampling, pi_old, pi_ref, and training's forward and backward, 1 + 2): 2 * 1000 * 50 * 6
    # = 600,000 FLOPs; in 0.5 s against a peak of 2,400,000 FLOP/s: MFU 0.5. With --grad_ckpt
    # one more forward: 7/6 of it
    speed = monitor.Speed(1000, 2.4e6, first_step=1, last_step=10, grad_ckpt=False)
    assert speed.step(1, 0.5, 50)["mfu"] == pytest.approx(0.5)
    assert monitor.Speed(1000, 2.4e6, 1, 10, True).step(1, 0.5, 50)["mfu"] == pytest.approx(0.5 * 7 / 6)
    # the ETA: the mean time per step so far times the steps left
    speed.t0 -= 6.0  # 6 s since the RL loop began, 3 steps done: 2 s a step, 7 left: 14 s
    assert speed.step(3, 1.0, 50)["eta_s"] == pytest.approx(14.0, rel=0.01)


def test_multiplying_params():
    # everything but the input embedding, unless lm_head shares its weight
    cfg = dict(vocab_size=11, n_embd=16, n_layer=1, n_head=2, n_kv_head=1, intermediate_size=32, max_seq_len=32)
    untied = Transformer(ModelConfig(**cfg, tie_embeddings=False))
    tied = Transformer(ModelConfig(**cfg, tie_embeddings=True))
    assert monitor.multiplying_params(untied) == sum(p.numel() for p in untied.parameters()) - 11 * 16
    assert monitor.multiplying_params(tied) == sum(p.numel() for p in tied.parameters())


def test_the_matmul_rate_is_positive_and_described():
    rate, text = monitor.peak_rate(torch.device("cpu"))
    assert rate > 1e8 and "float32 matmul" in text and "GFLOP/s on 1 thread" in text


def test_board_without_tensorboard_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if the package were absent
    board = monitor.Board(str(tmp_path), enabled=True)
    assert "pip install tensorboard" in capsys.readouterr().out
    board.add({"phase": "train", "stage": "rl", "step": 1, "reward": 0.5})  # does nothing, raises nothing


def test_board_writes_every_number(tmp_path, monkeypatch):
    written = []

    class Writer:
        def __init__(self, log_dir):
            written.append(("dir", log_dir))

        def add_scalar(self, tag, value, step):
            written.append((tag, value, step))

        def flush(self):
            pass

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", types.SimpleNamespace(SummaryWriter=Writer))
    board = monitor.Board(str(tmp_path), enabled=True)
    board.add({"phase": "eval", "stage": "rl", "step": 5, "accuracy": 0.25, "k": 8, "algo": "flowrl", "ok": True})
    assert written == [("dir", f"{tmp_path}/tensorboard"), ("eval/rl/accuracy", 0.25, 5), ("eval/rl/k", 8, 5)]


def test_a_run_logs_the_standard_metrics(tmp_path, capsys):
    out = str(tmp_path / "run")
    train.main(["--out_dir", out, *TINY, "--algo", "grpo"])
    printed = capsys.readouterr().out
    assert "MFU against cpu: float32 matmul" in printed
    assert "clip " in printed and " KL " in printed and " H " in printed and "ETA" in printed
    with open(os.path.join(out, "metrics.jsonl")) as f:
        rows = [json.loads(line) for line in f]
    rl = [r for r in rows if r["phase"] == "train" and r["stage"] == "rl"]
    for key in ("reward", "reward_std", "groups_equal", "response_length", "response_length_max", "truncated",
                "entropy", "kl_ref", "clip_frac", "grad_norm", "lr", "step_s", "tokens_per_s", "eta_s", "mfu"):
        assert all(key in r and math.isfinite(r[key]) for r in rl), key
    assert [r["lr"] for r in rl] == pytest.approx([1e-5 * s for s in range(1, 5)])  # warm-up: lr * step / 10
    assert rl[-1]["eta_s"] == 0 and all(0 < r["mfu"] for r in rl)
    assert all(0 <= r["truncated"] <= 1 and 0 <= r["groups_equal"] <= 1 and r["kl_ref"] >= 0 for r in rl)
    evals = [r for r in rows if r["phase"] == "eval"]
    assert all((r["temperature"], r["top_p"], r["top_k"]) == (1.0, 1.0, 0) for r in evals)
