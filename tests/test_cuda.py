"""The cuda path, which the rest of the suite never runs: bf16 autocast, the bf16 reference, cuda
generators and kernels, activation checkpointing and one FlowRL step on a GPU.

    python -m pytest -q tests/test_cuda.py        # skipped where torch sees no GPU
    python -m benchmarks.gpu_check --parts tests  # the same, as part 1 of the GPU check

- bf16 autocast (train.py's Dist.amp on cuda) gives float32 log-probs close to float32's, and the
  bf16 reference (training/launch.load_reference) too; no-grad and grad passes agree bit for bit;
- generate on cuda, with one cuda generator per row as train.py seeds them: recorded log-probs
  equal the teacher-forced ones, a row samples the same alone as in a padded batch;
- the KV cache on cuda, where masked grouped-query attention takes its own branch (model.py gives
  every query head its k/v copy), against the full forward on cuda and on the CPU;
- grad_ckpt's gradients against the plain backward, in float32 and under bf16 autocast;
- one FlowRL step as train.rl_update takes it, against the same step in float32 on the CPU; and
  train.py's toy run on cuda with --grad_ckpt.
Every test is marked `cuda` (tests/conftest.py registers the marker; `-m cuda` selects them).
CUDA_TESTS_DEVICE=cpu runs them on the CPU instead, bf16 autocast included, with the same
tolerances: benchmarks/gpu_check.py's dry run does, so that a mistake in this file shows before
GPU time is spent.
"""
import json
import math
import os

import pytest
import torch

import train
from flowrl import LogZHead, flowrl_loss, group_normalize
from model import KVCache, ModelConfig, Transformer
from sample import generate, left_pad, rollout_of, token_logprobs

DEVICE = torch.device(os.environ.get("CUDA_TESTS_DEVICE", "cuda"))
pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(DEVICE.type == "cuda" and not torch.cuda.is_available(), reason="no GPU")]

# Qwen2's layout (q/k/v biases, tied embeddings) with grouped-query attention: 4 query heads
# share 2 k/v heads, so the cuda branch of model.Attention runs whenever a mask does
CONFIG = ModelConfig(model_type="qwen2", vocab_size=256, n_embd=64, n_layer=2, n_head=4, n_kv_head=2,
                     intermediate_size=128, max_seq_len=128, qkv_bias=True)
EOS = 3
PROMPTS = [[5, 6, 7, 8, 9, 10], [11, 12], [13, 14, 15], [16]]  # left-padded to 6
# bf16 keeps 8 significant bits: each rounding moves a value by up to 2^-9 of itself. Here the
# logits have a standard deviation of 1.4 and reach 12 (lm_head scaled by 8 below), and rounding
# the activations and weights of two blocks moves a log-prob by up to 0.04 (measured on the CPU:
# 0.039 under autocast, 0.033 for the bf16 reference, whose residual stream is bf16 as well).
# 0.2 leaves 5x room for cuda's kernels; a real fault (a wrong mask, position or dtype) moves
# log-probs by whole nats.
BF16_LOGP = 0.2
# cuda's float32 kernels against the CPU's, or a cached decoding step against the full pass:
# the same sums in another order, 1e-7 relative per operation; 1e-3 leaves room should a
# kernel compute in TF32 (10 significant bits)
FLOAT32 = 1e-3


def amp():
    """bf16 autocast on DEVICE, as train.py's Dist.amp does on cuda (and here on the CPU too)."""
    return torch.autocast(DEVICE.type, dtype=torch.bfloat16)


def tiny_model():
    torch.manual_seed(0)
    m = Transformer(CONFIG)
    with torch.no_grad():  # sharper logits than the 0.02 init, so bf16's rounding is tested at scale
        m.lm_head.weight.mul_(8)
    return m.to(DEVICE)


def tiny_rollout(device=DEVICE):
    """The prompts with responses of 10, 4, 1 and 7 tokens, each ending in EOS: left-padded
    prompts and right-padded responses both covered."""
    g = torch.Generator().manual_seed(1)
    responses = [torch.randint(4, CONFIG.vocab_size, (n - 1,), generator=g).tolist() + [EOS] for n in (10, 4, 1, 7)]
    return rollout_of(PROMPTS, responses, 0, EOS, device)


def test_bf16_autocast_logprobs_close_to_float32(tmp_path):
    model, r = tiny_model(), tiny_rollout()
    with torch.no_grad():
        logp32 = token_logprobs(model, r).logp
        with amp():
            logp16 = token_logprobs(model, r).logp
    assert logp16.dtype == torch.float32 and (logp16[~r.response_mask] == 0).all()
    assert (logp16 - logp32).abs().max() < BF16_LOGP
    # pi_ref as train.py holds it on cuda: the same weights loaded in bf16 (launch.load_reference)
    model.save_pretrained(tmp_path)
    ref = Transformer.from_pretrained(tmp_path, torch.bfloat16, DEVICE).requires_grad_(False)
    with torch.no_grad(), amp():
        logp_ref = token_logprobs(ref, r).logp
    assert logp_ref.dtype == torch.float32 and (logp_ref - logp32).abs().max() < BF16_LOGP
    # pi_old (no grad) and pi_theta (grad) on the same rows agree to the last bit on this device:
    # what makes w == 1 exactly on the first mini-batch
    with amp():
        with torch.no_grad():
            logp_old = token_logprobs(model, r).logp
        logp = token_logprobs(model, r).logp
    assert logp.requires_grad and torch.equal(logp.detach(), logp_old)


def generators(seed, n):
    """One generator per row on DEVICE, as train.sample_step seeds them."""
    return [torch.Generator(DEVICE).manual_seed(seed + i) for i in range(n)]


def test_generate_on_device():
    model = tiny_model().eval()
    for precision, tol in ((amp(), BF16_LOGP), (torch.autocast(DEVICE.type, enabled=False), FLOAT32)):
        with precision:
            r = generate(model, PROMPTS, 12, eos_id=EOS, generator=generators(0, len(PROMPTS)))
            with torch.no_grad():
                logp = token_logprobs(model, r).logp
        assert r.response_ids.device.type == DEVICE.type
        n = r.response_mask.sum(1)  # prefix-shaped masks: n True, then False
        assert (r.response_mask == (torch.arange(r.response_mask.size(1), device=DEVICE) < n[:, None])).all()
        # the sampler's log-probs against the teacher-forced pi_old: train.py's sampler_logp_diff
        assert (r.logprobs - logp).abs().max() < tol
    # r is the float32 batch (the loop's last). A row samples the same tokens alone as in the padded
    # batch, given its generator (a rounding difference could flip a token only if a uniform fell
    # within 1e-7 of a cdf step)
    for i, p in enumerate(PROMPTS):
        alone = generate(model, [p], 12, eos_id=EOS, generator=generators(i, 1))
        k = int(alone.response_mask.sum())
        assert torch.equal(alone.response_ids[0, :k], r.response_ids[i, :k])


def test_kv_cache_matches_full_forward_and_the_cpu():
    model = tiny_model().eval()
    x, mask = left_pad([p + [20, 21, 22, 23] for p in PROMPTS], 0, DEVICE)  # (4, 10): 3 rows padded
    cache = KVCache(CONFIG.n_layer, x.size(1))
    with torch.no_grad():
        full = model(x, mask=mask)
        parts = [model(x[:, :6], mask=mask[:, :6], cache=cache)]  # prefill the prompts, then one at a time
        parts += [model(x[:, t:t + 1], mask=mask[:, :t + 1], cache=cache) for t in range(6, x.size(1))]
        on_cpu = model.cpu()(x.cpu(), mask=mask.cpu())  # the CPU has no k/v copies: another branch
    real = mask[:, :, None].expand_as(full)  # padding positions' logits are never used
    torch.testing.assert_close(torch.cat(parts, 1)[real], full[real], atol=FLOAT32, rtol=0)
    torch.testing.assert_close(full[real].cpu(), on_cpu[real.cpu()], atol=FLOAT32, rtol=0)


def test_grad_ckpt_gradients_equal_plain():
    model, r = tiny_model(), tiny_rollout()
    g = torch.Generator().manual_seed(2)  # fixed random weights, so that no gradient entry is special
    w_logp = torch.randn(r.response_ids.shape, generator=g).to(DEVICE)                   # (B, N)
    w_hidden = torch.randn(*r.prompt_ids.shape, CONFIG.n_embd, generator=g).to(DEVICE)  # (B, P, H)

    def grads(grad_ckpt, precision):  # a loss of logp and the prompt's hidden states, as log Z reads them
        model.grad_ckpt = grad_ckpt
        model.zero_grad(set_to_none=True)
        with precision:
            out = token_logprobs(model, r)
        ((out.logp * w_logp).sum() + (out.hidden.float() * w_hidden).sum()).backward()
        model.grad_ckpt = False
        return {name: p.grad.clone() for name, p in model.named_parameters()}

    calls = []
    hook = model.model.layers[0].register_forward_pre_hook(lambda module, args: calls.append(1))
    # float32: the same sums, maybe in another order (cuda's atomics): 1e-5 of the largest entry.
    # bf16: the recompute repeats forward to the bit, but a bf16 gradient summed in another order
    # may round one step apart (2^-8): 1e-2
    for precision, tol in ((torch.autocast(DEVICE.type, enabled=False), 1e-5), (amp(), 1e-2)):
        plain = grads(False, precision)
        calls.clear()
        ckpt = grads(True, precision)
        assert len(calls) == 2  # the block ran again in backward: checkpointing did happen
        # relative to the largest gradient entry: some are ~0 by symmetry (k_proj's bias shifts
        # every score of a query alike, which softmax ignores), their noise relative to themselves is not small
        scale = max(g.abs().max() for g in plain.values())
        for name, g in plain.items():
            torch.testing.assert_close(ckpt[name], g, rtol=tol, atol=tol * scale, msg=name)
    hook.remove()


def flowrl_step(model, ref, r, r_hat, precision):
    """One FlowRL step on one pass, as train.rl_update takes it: pi_old and pi_ref without
    gradients, then pi_theta, log Z, the loss, backward outside autocast, clip, AdamW."""
    torch.manual_seed(0)
    head = LogZHead(CONFIG.n_embd, dropout=0.0).to(r.prompt_ids.device)  # float32; no dropout: comparable
    opt = torch.optim.AdamW(list(model.parameters()) + list(head.parameters()), lr=1e-3, weight_decay=0.1)
    with torch.no_grad(), precision:
        logp_old, logp_ref = token_logprobs(model, r).logp, token_logprobs(ref, r).logp
    with precision:
        out = token_logprobs(model, r)
        log_z = head(out.hidden, r.prompt_mask)
        loss, m = flowrl_loss(logp=out.logp, logp_ref=logp_ref, logp_old=logp_old, mask=r.response_mask,
                              r_hat=r_hat, log_z=log_z)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(opt.param_groups[0]["params"], 1.0)
    opt.step()
    return loss, log_z, grad_norm, m


def test_flowrl_step_matches_float32_on_the_cpu(tmp_path):
    r, r_hat = tiny_rollout(), group_normalize(torch.tensor([1.0, 0.0, 0.0, 1.0]), 4).to(DEVICE)
    tiny_model().save_pretrained(tmp_path)
    model = Transformer.from_pretrained(tmp_path, torch.float32, DEVICE)
    ref = Transformer.from_pretrained(tmp_path, torch.bfloat16, DEVICE).requires_grad_(False)  # on cuda: bf16
    start = [p.detach().clone() for p in model.parameters()]
    loss, log_z, grad_norm, m = flowrl_step(model, ref, r, r_hat, amp())
    assert loss.dtype == log_z.dtype == torch.float32 and math.isfinite(loss.item())
    assert m["w_mean"] == 1.0  # pi_old from the same pass: w == 1 exactly
    assert all(p.grad is None for p in ref.parameters())
    assert all(torch.isfinite(p).all() and not torch.equal(p, p0) for p, p0 in zip(model.parameters(), start))
    # the same step in float32 on the CPU, the reference in float32 too
    cpu = dict(model=Transformer.from_pretrained(tmp_path), ref=Transformer.from_pretrained(tmp_path))
    loss32, _, grad_norm32, _ = flowrl_step(cpu["model"], cpu["ref"], tiny_rollout("cpu"), r_hat.cpu(),
                                            torch.autocast("cpu", enabled=False))
    # the loss is about mean((beta r_hat)^2) = 15^2 x 0.75 = 170 and moves by 26 x (lp - lp_ref)'s
    # error: 1% of it is an error of 0.07 nats a token on average (measured on the CPU: loss and
    # gradient norm within 3e-4 of float32's)
    torch.testing.assert_close(loss.cpu(), loss32, rtol=1e-2, atol=0)
    torch.testing.assert_close(grad_norm.cpu(), grad_norm32, rtol=1e-2, atol=0)


def test_toy_run_on_device(tmp_path):
    # train.py's own loop on DEVICE: SFT, the bf16 reference, cuda generators, --grad_ckpt, evaluation
    out = str(tmp_path / "run")
    train.main(["--device", DEVICE.type, "--out_dir", out, "--sft_steps", "12", "--rl_steps", "2",
                "--eval_interval", "2", "--prompts_per_step", "2", "--group_size", "4", "--eval_prompts", "3",
                "--eval_samples", "4", "--max_new_tokens", "24", "--grad_ckpt"])
    with open(os.path.join(out, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    rl = [r for r in records if r["phase"] == "train" and r["stage"] == "rl"]
    assert [r["step"] for r in rl] == [1, 2]
    for r in rl:
        assert r["w_mean_first"] == 1.0 and math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"])
        assert r["sampler_logp_diff"] < 5 * BF16_LOGP  # a trained model's logits are sharper: 5x room
    assert [r["step"] for r in records if r["phase"] == "eval"] == [12, 2]
