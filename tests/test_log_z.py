"""
Tests for log Z in flowrl.py: estimated from the rollout group instead of learned (group_log_z,
--log_z mean / logmeanexp), by hand with its gradients, as least squares and under Jensen's
inequality; and the learned head, LogZHead (shape, prompt tokens only, float32 under bf16, a
gradient check). The loss's worked examples are in test_flowrl.py, at the root.
"""
import math

import pytest
import torch

from flowrl import LogZHead, flowrl_loss, group_log_z, group_normalize
from test_flowrl import F64, close  # float64 worked examples, compared to 1e-6

# ----------------------------------------------------------------------------------------------
# flowrl_loss: log Z estimated from the rollout group instead of learned
#
# Write c_i = beta * r_hat_i + lp_ref_i - lp_i, so that delta_i = log Z - c_i. One group of
# G = B = 3, beta = 2, token means:
#
#   row 1: logp = [-1, -3], logp_ref = [-2, -2], r_hat = 1:     lp = -2, lp_ref = -2
#          c_1 = 2 * 1 + (-2) - (-2) = 2
#   row 2: logp = [-2], logp_ref = [-1], r_hat = -0.5:          lp = -2, lp_ref = -1
#          c_2 = 2 * (-0.5) + (-1) - (-2) = 0
#   row 3: logp = [-3, -3, -3], logp_ref = [-1, -1, -1], r_hat = -0.5:  lp = -3, lp_ref = -1
#          c_3 = -1 + (-1) - (-3) = 1
#
# "mean":  log Z = (2 + 0 + 1) / 3 = 1,  delta = 1 - c = [-1, 1, 0]
#   loss = (1 + 1 + 0) / 3 = 2/3, which is the group variance of c (dividing by G):
#   mean 1, deviations [1, -1, 0], (1 + 1 + 0) / 3 = 2/3.
# "logmeanexp":  log Z = L = log((e^2 + e^0 + e^1) / 3) = log(11.107338 / 3) = log(3.702446)
#                      = 1.308994 > 1 (Jensen),  delta = L - c = [-0.691006, 1.308994, 0.308994]
#   loss = mean(delta^2) = variance + (mean of delta)^2 = 2/3 + (L - 1)^2 = 0.762144
# Gradient, log Z held constant (detached), w = 1, B = 3:
#   d loss / d lp_i = (2/3) * delta_i,  and per token d loss / d logp_t = (2/3) * delta_i / |y_i|
#   "mean":       (2/3) * [-1, 1, 0] = [-2/3, 2/3, 0]   -> per token [-1/3, -1/3], [2/3], [0, 0, 0]
#   "logmeanexp": (2/3) * [L - 2, L, L - 1] = [-0.460671, 0.872662, 0.205996]
#                 -> per token [-0.230335 (x2)], [0.872662], [0.068665 (x3)]

def group_example():
    logp = torch.tensor([[-1.0, -3.0, 0.0], [-2.0, 0.0, 0.0], [-3.0, -3.0, -3.0]], dtype=F64,
                        requires_grad=True)
    logp_ref = torch.tensor([[-2.0, -2.0, 0.0], [-1.0, 0.0, 0.0], [-1.0, -1.0, -1.0]], dtype=F64)
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=torch.bool)
    r_hat = torch.tensor([1.0, -0.5, -0.5], dtype=F64)
    return logp, logp_ref, mask, r_hat


def run_group_example(log_z):
    logp, logp_ref, mask, r_hat = group_example()
    loss, metrics = flowrl_loss(logp=logp, logp_ref=logp_ref, logp_old=logp.detach(), mask=mask,
                                r_hat=r_hat, log_z=log_z, beta=2.0, group_size=3)
    loss.backward()
    return loss.detach(), logp.grad, metrics


def test_log_z_mean_by_hand():
    loss, g_logp, metrics = run_group_example("mean")
    close(loss, 2 / 3)
    close(g_logp, [[-1 / 3, -1 / 3, 0.0], [2 / 3, 0.0, 0.0], [0.0, 0.0, 0.0]])
    # |delta| = (1 + 1 + 0)/3, log_z = 1 in every row, lp = (-2 - 2 - 3)/3, lp_ref = (-2 - 1 - 1)/3
    assert metrics == pytest.approx({"delta_abs": 2 / 3, "w_mean": 1.0, "w_clipped_frac": 0.0,
                                     "log_z": 1.0, "logp": -7 / 3, "logp_ref": -4 / 3})


def test_log_z_logmeanexp_by_hand():
    L = math.log((math.e ** 2 + 1 + math.e) / 3)
    close(torch.tensor(L, dtype=F64), 1.308994, tol=1e-6)
    loss, g_logp, metrics = run_group_example("logmeanexp")
    close(loss, 2 / 3 + (L - 1) ** 2)
    close(loss, 0.762144, tol=1e-6)
    g = [2 / 3 * (L - 2) / 2, 2 / 3 * L, 2 / 3 * (L - 1) / 3]  # (2/B) * delta_i / |y_i|
    close(g_logp, [[g[0], g[0], 0.0], [g[1], 0.0, 0.0], [g[2], g[2], g[2]]])
    assert metrics["log_z"] == pytest.approx(L)


@pytest.mark.parametrize("estimator", ["mean", "logmeanexp"])
def test_group_log_z_has_no_gradient(estimator):
    # The estimate is detached: it carries no graph, and the loss equals, value and gradient,
    # the loss with the same numbers passed in as a constant log Z. For "logmeanexp" a gradient
    # through L would add (2/B) * sum_j delta_j * dL/d lp_i = -(2/B) * 3 (L - 1) * softmax(c)_i,
    # which is not 0 here (mean delta = L - 1 = 0.31): the hand-derived values above exclude it.
    c = torch.tensor([2.0, 0.0, 1.0], dtype=F64, requires_grad=True)
    log_z = group_log_z(c, 3, estimator)
    assert not log_z.requires_grad and log_z.grad_fn is None
    loss, g_logp, _ = run_group_example(estimator)
    loss_const, g_const, _ = run_group_example(log_z)
    assert torch.equal(loss, loss_const) and torch.equal(g_logp, g_const)


def random_groups(seed, groups=3, G=4, N=5):
    g = torch.Generator().manual_seed(seed)
    B = groups * G
    logp = (-torch.rand(B, N, generator=g, dtype=F64) * 3).requires_grad_(True)
    logp_ref = -torch.rand(B, N, generator=g, dtype=F64) * 3
    mask = torch.rand(B, N, generator=g) < 0.7
    mask[:, 0] = True
    r_hat = group_normalize(torch.randint(0, 2, (B,), generator=g).to(F64), G)
    return logp, logp_ref, mask, r_hat, G


@pytest.mark.parametrize("logp_norm", ["mean", "sum"])
def test_log_z_mean_is_the_group_variance_of_the_residual(logp_norm):
    # With d_i = lp_i - beta r_hat_i - lp_ref_i = -c_i and d_bar_g its group mean,
    #   V_g = (1/G) * sum_{j in g} (d_j - d_bar_g)^2,      loss = (1/num_groups) * sum_g V_g
    #   dV_g / d lp_i = (2/G) * (d_i - d_bar_g) - (2/G) * sum_j (d_j - d_bar_g) * (1/G)
    #                 = (2/G) * (d_i - d_bar_g)             the deviations sum to 0
    #                 = (2/G) * delta_i                      log Z_g = c_bar_g = -d_bar_g, so
    #                                                        delta_i = log Z_g - c_i = d_i - d_bar_g
    # and d loss / d lp_i = (1/num_groups) * (2/G) * delta_i = (2/B) * delta_i, the loss's own
    # gradient with log Z detached. Same value, same gradient (torch.var, through autograd).
    logp, logp_ref, mask, r_hat, G = random_groups(0)
    beta = 3.0
    loss, _ = flowrl_loss(logp=logp, logp_ref=logp_ref, logp_old=logp.detach(), mask=mask,
                          r_hat=r_hat, log_z="mean", beta=beta, logp_norm=logp_norm, group_size=G)
    (g_loss,) = torch.autograd.grad(loss, logp)
    norm = mask.sum(dim=1) if logp_norm == "mean" else 1
    lp = torch.where(mask, logp, 0.0).sum(dim=1) / norm
    lp_ref = torch.where(mask, logp_ref, 0.0).sum(dim=1) / norm
    d = (lp - beta * r_hat - lp_ref).view(-1, G)  # (groups, G)
    variance = d.var(dim=1, unbiased=False).mean()
    (g_var,) = torch.autograd.grad(variance, logp)
    torch.testing.assert_close(loss, variance, atol=1e-12, rtol=0)
    torch.testing.assert_close(g_loss, g_var, atol=1e-12, rtol=0)

    # finite differences agree too: the gradient through the mean is 0, so detaching loses nothing
    def f(logp):
        return flowrl_loss(logp=logp, logp_ref=logp_ref, logp_old=logp.detach(), mask=mask,
                           r_hat=r_hat, log_z="mean", beta=beta, logp_norm=logp_norm,
                           group_size=G)[0]
    assert torch.autograd.gradcheck(f, (logp,))


def test_log_z_mean_is_least_squares_and_logmeanexp_is_above_it():
    # Per group, sum_i (z - c_i)^2 = sum_i (c_bar - c_i)^2 + G (z - c_bar)^2, so with w = 1 and
    # groups of equal size any constant log Z per group, z_g = c_bar_g + s_g, gives
    #   loss(z) = loss(mean) + (1/num_groups) * sum_g s_g^2  >=  loss(mean)
    # and log mean exp(c) >= mean(c) (Jensen) in every group.
    logp, logp_ref, mask, r_hat, G = random_groups(1)
    kw = dict(logp=logp, logp_ref=logp_ref, logp_old=logp.detach(), mask=mask, r_hat=r_hat,
              beta=3.0, group_size=G)
    loss_mean, m_mean = flowrl_loss(log_z="mean", **kw)
    loss_lme, m_lme = flowrl_loss(log_z="logmeanexp", **kw)
    lp = torch.where(mask, logp, 0.0).sum(dim=1) / mask.sum(dim=1)
    lp_ref = torch.where(mask, logp_ref, 0.0).sum(dim=1) / mask.sum(dim=1)
    c = (3.0 * r_hat + lp_ref - lp).detach()  # (B,)
    z_mean, z_lme = group_log_z(c, G, "mean"), group_log_z(c, G, "logmeanexp")
    assert (z_lme > z_mean).all()  # strict: the residuals of these groups differ
    close(z_mean.view(-1, G)[:, 0], c.view(-1, G).mean(dim=1), tol=1e-12)
    assert loss_lme > loss_mean
    g = torch.Generator().manual_seed(2)
    for _ in range(20):
        s = torch.randn(3, generator=g, dtype=F64)  # (groups,)
        loss_z, _ = flowrl_loss(log_z=z_mean + s.repeat_interleave(G), **kw)
        assert loss_z >= loss_mean
        close(loss_z.detach() - loss_mean.detach(), s.pow(2).mean(), tol=1e-10)
    # equal residuals: c_i = 0.7 in group 1, -2 in group 2 -> both estimates are c, delta = 0
    c_eq = torch.tensor([0.7, 0.7, 0.7, -2.0, -2.0, -2.0], dtype=F64)
    close(group_log_z(c_eq, 3, "logmeanexp"), c_eq, tol=1e-12)  # to rounding: log(3 e^c) - log 3
    close(group_log_z(c_eq, 3, "mean"), c_eq, tol=1e-12)


def test_log_z_estimate_is_per_group():
    # Two groups of 2, c = [0, 2] and [5, 5]: means [1, 5], one value per row -> [1, 1, 5, 5];
    # log mean exp of [0, 2] = log((1 + e^2) / 2) = log(4.194528) = 1.433781
    c = torch.tensor([0.0, 2.0, 5.0, 5.0], dtype=F64)
    close(group_log_z(c, 2, "mean"), [1.0, 1.0, 5.0, 5.0])
    close(group_log_z(c, 2, "logmeanexp"), [1.433781, 1.433781, 5.0, 5.0], tol=1e-6)
    # float32 token sums: c = 200 overflows exp, not logsumexp
    big = torch.tensor([200.0, 200.0])
    assert torch.isfinite(group_log_z(big, 2, "logmeanexp")).all()


def test_learned_log_z_ignores_group_size():
    # A (B,) tensor is used as it is: group_size changes nothing, bit for bit.
    logp, logp_ref, mask, r_hat = group_example()
    log_z = torch.tensor([0.3, -1.0, 2.0], dtype=F64)
    kw = dict(logp=logp, logp_ref=logp_ref, logp_old=logp.detach(), mask=mask, r_hat=r_hat,
              log_z=log_z, beta=2.0)
    assert torch.equal(flowrl_loss(**kw)[0], flowrl_loss(**kw, group_size=3)[0])


def test_group_log_z_bad_inputs_raise():
    logp, logp_ref, mask, r_hat = group_example()
    kw = dict(logp=logp, logp_ref=logp_ref, logp_old=logp.detach(), mask=mask, r_hat=r_hat)
    with pytest.raises(ValueError, match="not a multiple of group_size"):
        flowrl_loss(**kw, log_z="mean", group_size=2)  # B = 3: a pass that splits a group
    with pytest.raises(ValueError, match="not a multiple of group_size"):
        flowrl_loss(**kw, log_z="logmeanexp")  # group_size not given
    with pytest.raises(ValueError, match="log_z must be a"):
        flowrl_loss(**kw, log_z="head", group_size=3)


# ----------------------------------------------------------------------------------------------
# LogZHead

def test_log_z_head_shape_prompt_only_and_gradient():
    torch.manual_seed(0)
    B, T, H = 3, 5, 8
    head = LogZHead(H).eval()  # eval: no dropout, so two calls give the same output
    hidden = torch.randn(B, T, H, requires_grad=True)
    prompt_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [0, 1, 1, 1, 0]],
                               dtype=torch.bool)  # row 3: a left-padded prompt
    log_z = head(hidden, prompt_mask)
    assert log_z.shape == (B,) and log_z.dtype == torch.float32

    # only prompt positions matter, even if the others hold inf
    other = torch.where(prompt_mask.unsqueeze(-1), hidden.detach(), float("inf"))
    assert torch.equal(head(other, prompt_mask), log_z.detach())

    # not detached: the gradient reaches the prompt's hidden states, and only those
    log_z.sum().backward()
    grad_norm = hidden.grad.norm(dim=-1)  # (B, T)
    assert (grad_norm[prompt_mask] > 0).all() and (grad_norm[~prompt_mask] == 0).all()


def test_log_z_head_architecture_and_empty_prompt():
    # official: 2 x [Linear(H, H) -> GELU -> LayerNorm(H) -> Dropout(0.1)] then Linear(H, 1)
    head = LogZHead(8)
    block = ["Linear", "GELU", "LayerNorm", "Dropout"]
    assert [type(m).__name__ for m in head.mlp] == block + block + ["Linear"]
    assert head.mlp[-1].out_features == 1 and head.mlp[3].p == 0.1
    with pytest.raises(ValueError, match="at least one prompt token"):
        head(torch.zeros(2, 3, 8), torch.tensor([[True, False, False], [False, False, False]]))


def test_log_z_head_float32_under_bf16():
    head = LogZHead(8)
    hidden = torch.randn(2, 3, 8).to(torch.bfloat16)
    prompt_mask = torch.ones(2, 3, dtype=torch.bool)
    assert head(hidden, prompt_mask).dtype == torch.float32
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        assert head(hidden, prompt_mask).dtype == torch.float32


def test_log_z_head_gradcheck():
    torch.manual_seed(0)
    head = LogZHead(6).double().eval()
    hidden = torch.randn(2, 4, 6, dtype=F64, requires_grad=True)
    prompt_mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    assert torch.autograd.gradcheck(lambda h: head(h, prompt_mask), (hidden,))


