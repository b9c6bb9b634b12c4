"""
Tests for the GRPO baseline of flowrl.py: the clipped surrogate and the k3 KL term against values
worked out by hand, the pessimistic side of the clip, padding, and a gradient check.

Per token t of response i, with rho_t = exp(logp_t - logp_old_t) and advantage A_i:

    loss = token mean of -min(rho_t A_i, clip(rho_t, 1 - eps, 1 + eps) A_i) + kl_coef * k3_t
    k3_t = exp(logp_ref_t - logp_t) - (logp_ref_t - logp_t) - 1

Token means are over the mask tokens of the whole batch; eps = 0.2 on both sides (the default).

Run: python -m pytest -q tests/test_grpo.py
"""
import math

import pytest
import torch

from flowrl import grpo_loss
from test_flowrl import F64, close  # float64 worked examples, compared to 1e-6


def grpo_example(kl_coef=0.0, ref_shift=0.0):
    # Response 1: 2 tokens, A = +1, ratios rho = [1.5, 0.5]; response 2: 3 tokens, A = -1,
    # ratios [1.5, 0.5, 1.0]. logp_ref = logp + ref_shift.
    logp = torch.tensor([[-1.0, -2.0, 0.0], [-0.5, -1.0, -3.0]], dtype=F64, requires_grad=True)
    rho = torch.tensor([[1.5, 0.5, 1.0], [1.5, 0.5, 1.0]], dtype=F64)
    logp_old = logp.detach() - rho.log()
    mask = torch.tensor([[True, True, False], [True, True, True]])
    adv = torch.tensor([1.0, -1.0], dtype=F64)
    loss, metrics = grpo_loss(logp, logp.detach() + ref_shift, logp_old, mask, adv,
                              kl_coef=kl_coef)
    loss.backward()
    return loss.detach(), logp.grad, metrics


def test_grpo_by_hand():
    # eps 0.2: clip(rho) = clamp(rho, 0.8, 1.2). Unclipped tokens: l = -rho * A, and since
    # d rho / d logp = rho, d l / d logp = -A * rho. Clipped tokens: constant, gradient 0.
    #   resp 1, A = +1, rho 1.5: min(1.5, 1.2) = 1.2    clipped   l = -1.2  grad 0
    #   resp 1, A = +1, rho 0.5: min(0.5, 0.8) = 0.5    unclipped l = -0.5  grad -0.5
    #   resp 2, A = -1, rho 1.5: min(-1.5, -1.2) = -1.5 unclipped l = 1.5   grad 1.5
    #   resp 2, A = -1, rho 0.5: min(-0.5, -0.8) = -0.8 clipped   l = 0.8   grad 0
    #   resp 2, A = -1, rho 1.0: min(-1, -1) = -1       unclipped l = 1.0   grad 1.0
    # loss = (-1.2 - 0.5 + 1.5 + 0.8 + 1.0) / 5 tokens = 1.6 / 5 = 0.32
    # gradients / 5: [[0, -0.1, pad 0], [0.3, 0, 0.2]]
    # clip_frac = 2/5 = 0.4, ratio_mean = (1.5 + 0.5 + 1.5 + 0.5 + 1) / 5 = 1, kl = 0 (ref = logp)
    loss, grad, metrics = grpo_example()
    close(loss, 0.32)
    close(grad, [[0.0, -0.1, 0.0], [0.3, 0.0, 0.2]])
    assert metrics == pytest.approx({"clip_frac": 0.4, "ratio_mean": 1.0, "kl": 0.0})


def test_grpo_by_hand_kl_is_added():
    # Same batch, kl_coef = 0.5, logp_ref = logp + ln 2 on every token:
    #   lr = ln 2, kl_t = e^{ln 2} - ln 2 - 1 = 1 - ln 2 = 0.306853 on each of the 5 tokens
    #   loss = 0.32 + 0.5 * (1 - ln 2) = 0.473426   (added: a subtracted KL would give 0.166574)
    #   d kl_t / d logp_t = -e^{lr} + 1 = -1, times 0.5 / 5 tokens = -0.1 on every token:
    #   negative, so a descent step raises logp toward the larger logp_ref.
    loss, grad, metrics = grpo_example(kl_coef=0.5, ref_shift=math.log(2))
    close(loss, 0.32 + 0.5 * (1 - math.log(2)))
    close(grad, [[-0.1, -0.2, 0.0], [0.2, -0.1, 0.1]])
    assert metrics["kl"] == pytest.approx(1 - math.log(2))


def test_grpo_kl_is_nonnegative_and_pulls_toward_ref():
    g = torch.Generator().manual_seed(2)
    logp = (-torch.rand(4, 6, generator=g, dtype=F64) * 4).requires_grad_(True)
    logp_ref = -torch.rand(4, 6, generator=g, dtype=F64) * 4
    mask = torch.ones(4, 6, dtype=torch.bool)
    # A = 0 leaves only the KL term; its loss is the token-mean k3 and must be >= 0.
    loss, metrics = grpo_loss(logp, logp_ref, logp.detach(), mask, torch.zeros(4, dtype=F64),
                              kl_coef=1.0)
    loss.backward()
    assert loss.item() > 0 and metrics["kl"] == pytest.approx(loss.item())
    # gradient has the sign of (logp - logp_ref): descent moves each logp toward logp_ref
    assert (logp.grad * (logp.detach() - logp_ref) > 0).all()


@pytest.mark.parametrize("adv, rho, clipped", [
    (+1.0, 1.5, True),   # A > 0, ratio above 1 + eps: min(1.5A, 1.2A) = 1.2A, cut off
    (+1.0, 0.5, False),  # A > 0, ratio below 1 - eps: min(0.5A, 0.8A) = 0.5A, still pushed up
    (-1.0, 1.5, False),  # A < 0, ratio above 1 + eps: min(-1.5, -1.2) = -1.5, still pushed down
    (-1.0, 0.5, True),   # A < 0, ratio below 1 - eps: min(-0.5, -0.8) = -0.8, cut off
])
def test_grpo_clip_is_pessimistic(adv, rho, clipped):
    # The clip only removes the gradient that would move the ratio further in the direction the
    # advantage rewards; for A < 0 that is the low side, not the high side.
    logp = torch.tensor([[-1.0]], dtype=F64, requires_grad=True)
    logp_old = logp.detach() - math.log(rho)
    loss, metrics = grpo_loss(logp, logp.detach(), logp_old, torch.tensor([[True]]),
                              torch.tensor([adv], dtype=F64))
    loss.backward()
    close(loss, -min(rho * adv, min(max(rho, 0.8), 1.2) * adv))
    assert metrics["clip_frac"] == float(clipped)
    close(logp.grad, [[0.0 if clipped else -adv * rho]])


def test_grpo_padding_and_gradcheck():
    g = torch.Generator().manual_seed(3)
    logp0 = -torch.rand(3, 4, generator=g, dtype=F64) * 2
    # ratios chosen away from the clip's kinks at 0.8 and 1.2, so finite differences are smooth
    rho = torch.tensor([[0.5, 0.9, 1.1, 1.5], [0.7, 1.3, 1.0, 1.0], [1.05, 1.0, 1.0, 1.0]],
                       dtype=F64)
    logp_old = logp0 - rho.log()
    logp_ref = -torch.rand(3, 4, generator=g, dtype=F64) * 2
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    adv = torch.tensor([1.0, -0.7, 0.3], dtype=F64)

    def f(logp):
        return grpo_loss(logp, logp_ref, logp_old, mask, adv, kl_coef=0.1)[0]

    assert torch.autograd.gradcheck(f, (logp0.clone().requires_grad_(True),))

    # Garbage in the padded slots changes neither the loss nor the gradient.
    def loss_and_grad(pad_logp, pad_ref, pad_old):
        logp = torch.where(mask, logp0, pad_logp).requires_grad_(True)
        loss = grpo_loss(logp, torch.where(mask, logp_ref, pad_ref),
                         torch.where(mask, logp_old, pad_old), mask, adv, kl_coef=0.1)[0]
        loss.backward()
        return loss.detach(), logp.grad

    clean = loss_and_grad(0.0, 0.0, 0.0)
    dirty = loss_and_grad(-float("inf"), 1e30, float("nan"))
    assert torch.equal(clean[0], dirty[0]) and torch.equal(clean[1], dirty[1])
    assert torch.equal(dirty[1][~mask], torch.zeros(int((~mask).sum()), dtype=F64))
