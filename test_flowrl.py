"""
Tests for flowrl.py's FlowRL loss (the GRPO baseline's are in tests/test_grpo.py; log Z estimated
from the group, and the log Z head, in tests/test_log_z.py), and the distribution-matching toy that
sets the two against each other. The worked examples are meant to
be checked with a pencil: each one writes out delta, w, the loss and the gradients before
asserting them.

For the FlowRL loss, with B responses, |y_i| mask tokens in response i and w held fixed
(it is detached):

    loss              = (1/B) * sum_i w_i * delta_i^2
    d loss / d logp_t = (2/B) * w_i * delta_i / |y_i|     for each mask token t of response i
    d loss / d log_z_i = (2/B) * w_i * delta_i

(with logp_norm="sum" the token sum replaces the mean in delta, and the 1/|y_i| goes). With
log Z estimated from the group (log_z="mean" / "logmeanexp") there is no log_z gradient, and the
logp gradient keeps this form: the estimate is a constant to the loss.

Run: python -m pytest -q test_flowrl.py tests/test_log_z.py
"""
import math

import pytest
import torch

from flowrl import flowrl_loss, group_normalize, reward_target, train_toy_distribution

# Worked examples run in float64 so that the 1e-6 comparisons test the arithmetic, not float32
# rounding; the functions accept float32 (the training dtype) and anything wider.
F64 = torch.float64


def close(actual, expected, tol=1e-6):
    expected = torch.as_tensor(expected, dtype=actual.dtype)
    torch.testing.assert_close(actual, expected, atol=tol, rtol=0)


# ----------------------------------------------------------------------------------------------
# group_normalize

def test_group_normalize_by_hand():
    # group 1: R = [1, 0, 0, 0]
    #   mean = 0.25, R - mean = [0.75, -0.25, -0.25, -0.25]
    #   sum of squares = 0.5625 + 3 * 0.0625 = 0.75, Bessel: / (4 - 1) = 0.25, std = 0.5
    #   r_hat = [0.75, -0.25, -0.25, -0.25] / (0.5 + 1e-6) = [1.5, -0.5, -0.5, -0.5] / (1 + 2e-6)
    # group 2: R = [1, 1, 0, 0]
    #   mean = 0.5, R - mean = [0.5, 0.5, -0.5, -0.5]
    #   sum of squares = 1, / 3, std = 1/sqrt(3) = 0.577350...
    #   r_hat = +-0.5 / (1/sqrt(3) + 1e-6) = +-0.866024...  (sqrt(3)/2 = 0.866025 without eps)
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0])
    r_hat = group_normalize(rewards, group_size=4)
    a = 1 / (1 + 2e-6)
    b = 0.5 / (1 / math.sqrt(3) + 1e-6)
    close(r_hat, [1.5 * a, -0.5 * a, -0.5 * a, -0.5 * a, b, b, -b, -b])


def test_group_of_one_gives_zero():
    # Bessel's std of one sample is 0/0; the answer must be 0, not NaN.
    r_hat = group_normalize(torch.tensor([1.0, 0.0, 3.0]), group_size=1)
    assert torch.equal(r_hat, torch.zeros(3))


def test_equal_rewards_give_exactly_zero():
    # Eight float32 rewards of 0.3: R - mean is 3e-8 from rounding, not 0. Without the
    # all-equal check r_hat would be 3e-8 / (3e-8 + 1e-6) = 0.03 (times beta = 15: 0.45).
    rewards = torch.cat([torch.full((8,), 0.3), torch.ones(8), -torch.ones(8)])
    assert torch.equal(group_normalize(rewards, group_size=8), torch.zeros(24))


def test_group_size_must_divide_batch():
    with pytest.raises(ValueError, match="multiple of group_size"):
        group_normalize(torch.zeros(6), group_size=4)


def test_reward_target_group_or_raw():
    # R = [1, 0, 0, 0, 1, 1], groups of 2: [1, 0], [0, 0], [1, 1]
    #   "group": [1, 0] has mean 0.5, Bessel std sqrt(0.5 / 1) = 0.707107,
    #            r_hat = +-0.5 / (0.707107 + 1e-6) = +-0.707106; the two equal groups give 0
    #   "raw":   r_hat = R as it is: the answers of [1, 1] keep their reward 1
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0], dtype=F64)
    a = 0.5 / (math.sqrt(0.5) + 1e-6)
    close(reward_target(rewards, 2, "group"), [a, -a, 0, 0, 0, 0])
    assert torch.equal(reward_target(rewards, 2, "group"), group_normalize(rewards, 2))
    assert torch.equal(reward_target(rewards, 2, "raw"), rewards)
    assert torch.equal(reward_target(rewards, 2), group_normalize(rewards, 2))  # the default
    with pytest.raises(ValueError, match="reward norm must be one of"):
        reward_target(rewards, 2, "rank")


# ----------------------------------------------------------------------------------------------
# flowrl_loss: worked examples
#
# The shared batch, beta = 2, N = 3 slots, response 1 has 2 tokens (slot 3 is padding):
#
#   response 1: logp = [-1, -2], logp_ref = [-1, -1], r_hat = 0.5, log_z = 2.5
#       lp = (-1 - 2)/2 = -1.5, lp_ref = -1, beta * r_hat = 1
#       delta_1 = 2.5 + (-1.5) - 1 - (-1) = 1
#   response 2: logp = [-1, -1, -4], logp_ref = [-1, -2, -3], r_hat = -0.5, log_z = -3
#       lp = -6/3 = -2, lp_ref = -6/3 = -2, beta * r_hat = -1
#       delta_2 = -3 + (-2) - (-1) - (-2) = -2
#
# logp_old puts the whole log-ratio on the first token, so sum_t (logp - logp_old) = log(ratio_i)
# and the raw weight is w_i = ratio_i. With B = 2 the gradient formulas become
#   d loss / d logp_t = w_i * delta_i / |y_i|,   d loss / d log_z_i = w_i * delta_i.

def example_batch(ratio1, ratio2):
    logp = torch.tensor([[-1.0, -2.0, 0.0], [-1.0, -1.0, -4.0]], dtype=F64, requires_grad=True)
    logp_ref = torch.tensor([[-1.0, -1.0, 0.0], [-1.0, -2.0, -3.0]], dtype=F64)
    log_ratio = torch.zeros(2, 3, dtype=F64)
    log_ratio[:, 0] = torch.tensor([ratio1, ratio2], dtype=F64).log()
    logp_old = logp.detach() - log_ratio
    mask = torch.tensor([[True, True, False], [True, True, True]])
    r_hat = torch.tensor([0.5, -0.5], dtype=F64)
    log_z = torch.tensor([2.5, -3.0], dtype=F64, requires_grad=True)
    return logp, logp_ref, logp_old, mask, r_hat, log_z


def run_example(weight, ratio1, ratio2, logp_norm="mean"):
    logp, logp_ref, logp_old, mask, r_hat, log_z = example_batch(ratio1, ratio2)
    loss, metrics = flowrl_loss(logp, logp_ref, logp_old, mask, r_hat, log_z, beta=2.0,
                                weight=weight, logp_norm=logp_norm)
    loss.backward()
    return loss.detach(), logp.grad, log_z.grad, metrics


def test_flowrl_by_hand_weight_none():
    # w = [1, 1], whatever the ratios (3 and 1/4 here)
    # loss = (1 * 1^2 + 1 * (-2)^2) / 2 = 5/2 = 2.5
    # d/d logp: response 1: 1 * 1 / 2 = 0.5 per token; response 2: 1 * (-2) / 3 = -2/3 per token
    # d/d log_z = [1 * 1, 1 * (-2)] = [1, -2]
    loss, g_logp, g_log_z, metrics = run_example("none", 3.0, 0.25)
    close(loss, 2.5)
    close(g_logp, [[0.5, 0.5, 0.0], [-2 / 3, -2 / 3, -2 / 3]])
    close(g_log_z, [1.0, -2.0])
    # metrics: |delta| = (1 + 2)/2, log_z = (2.5 - 3)/2, lp = (-1.5 - 2)/2, lp_ref = (-1 - 2)/2
    assert metrics == pytest.approx({"delta_abs": 1.5, "w_mean": 1.0, "w_clipped_frac": 0.0,
                                     "log_z": -0.25, "logp": -1.75, "logp_ref": -1.5})


def test_flowrl_by_hand_weight_raw():
    # ratios 3 and 1/4 -> w = [3, 0.25], unbounded
    # loss = (3 * 1 + 0.25 * 4) / 2 = 4/2 = 2
    # d/d logp: response 1: 3 * 1 / 2 = 1.5; response 2: 0.25 * (-2) / 3 = -1/6
    # d/d log_z = [3 * 1, 0.25 * (-2)] = [3, -0.5]
    loss, g_logp, g_log_z, metrics = run_example("raw", 3.0, 0.25)
    close(loss, 2.0)
    close(g_logp, [[1.5, 1.5, 0.0], [-1 / 6, -1 / 6, -1 / 6]])
    close(g_log_z, [3.0, -0.5])
    assert metrics["w_mean"] == pytest.approx((3 + 0.25) / 2)
    assert metrics["w_clipped_frac"] == 0.0


def test_flowrl_by_hand_weight_cap_binds():
    # ratios 20 and 1/4, cap 10 -> w = [min(20, 10), min(0.25, 10)] = [10, 0.25]
    # loss = (10 * 1 + 0.25 * 4) / 2 = 11/2 = 5.5
    # d/d logp: response 1: 10 * 1 / 2 = 5; response 2: 0.25 * (-2) / 3 = -1/6
    # d/d log_z = [10, -0.5]; one of two weights was changed -> w_clipped_frac = 0.5
    loss, g_logp, g_log_z, metrics = run_example("cap", 20.0, 0.25)
    close(loss, 5.5)
    close(g_logp, [[5.0, 5.0, 0.0], [-1 / 6, -1 / 6, -1 / 6]])
    close(g_log_z, [10.0, -0.5])
    assert metrics["w_mean"] == pytest.approx((10 + 0.25) / 2)
    assert metrics["w_clipped_frac"] == 0.5


def test_flowrl_by_hand_weight_clip_binds():
    # ratios 3 and 1/4, eps 0.2 -> w = [clamp(3, 0.8, 1.2), clamp(0.25, 0.8, 1.2)] = [1.2, 0.8]
    # loss = (1.2 * 1 + 0.8 * 4) / 2 = 4.4/2 = 2.2
    # d/d logp: response 1: 1.2 * 1 / 2 = 0.6; response 2: 0.8 * (-2) / 3 = -8/15
    # d/d log_z = [1.2, -1.6]; both weights changed -> w_clipped_frac = 1
    loss, g_logp, g_log_z, metrics = run_example("clip", 3.0, 0.25)
    close(loss, 2.2)
    close(g_logp, [[0.6, 0.6, 0.0], [-8 / 15, -8 / 15, -8 / 15]])
    close(g_log_z, [1.2, -1.6])
    assert metrics["w_mean"] == pytest.approx(1.0)
    assert metrics["w_clipped_frac"] == 1.0


def test_flowrl_by_hand_sequence_sums():
    # logp_norm="sum": the same batch with sequence sums in delta (exact trajectory balance)
    #   response 1: lp = -1 - 2 = -3, lp_ref = -1 - 1 = -2, beta * r_hat = 1, log_z = 2.5
    #       delta_1 = 2.5 + (-3) - 1 - (-2) = 0.5
    #   response 2: lp = -1 - 1 - 4 = -6, lp_ref = -1 - 2 - 3 = -6, beta * r_hat = -1, log_z = -3
    #       delta_2 = -3 + (-6) - (-1) - (-6) = -2
    # w is still the capped ratio of the sequence probabilities: ratios 20 and 1/4 -> [10, 0.25]
    #   loss = (10 * 0.5^2 + 0.25 * (-2)^2) / 2 = (2.5 + 1) / 2 = 1.75
    # d/d logp_t = (2/B) * w_i * delta_i, the same for every token of response i:
    #   response 1: 10 * 0.5 = 5;  response 2: 0.25 * (-2) = -0.5
    # d/d log_z = [10 * 0.5, 0.25 * (-2)] = [5, -0.5]
    loss, g_logp, g_log_z, metrics = run_example("cap", 20.0, 0.25, logp_norm="sum")
    close(loss, 1.75)
    close(g_logp, [[5.0, 5.0, 0.0], [-0.5, -0.5, -0.5]])
    close(g_log_z, [5.0, -0.5])
    # metrics: |delta| = (0.5 + 2)/2, lp = (-3 - 6)/2, lp_ref = (-2 - 6)/2, w = (10 + 0.25)/2
    assert metrics == pytest.approx({"delta_abs": 1.25, "w_mean": 5.125, "w_clipped_frac": 0.5,
                                     "log_z": -0.25, "logp": -4.5, "logp_ref": -4.0})


def test_flowrl_by_hand_official_beta_fresh_rollout():
    # One group of 4 at the official beta = 15 on a fresh rollout (logp_old = logp, so w = 1),
    # with rewards [1, 0, 0, 0]: r_hat = [1.5, -0.5, -0.5, -0.5] (the z-score above, without eps).
    # Policy equal to the reference and log Z = 0, so delta_i = -beta * r_hat_i:
    #   delta = [-22.5, 7.5, 7.5, 7.5]
    #   loss = (22.5^2 + 3 * 7.5^2) / 4 = (506.25 + 168.75) / 4 = 168.75   large, where a
    #   PPO / GRPO loss sits near 0: log rewards, accuracy and |delta|, not only the loss
    # Lengths |y| = [1, 2, 1, 3], B = 4, so (2/B) = 0.5:
    #   d/d logp: 0.5 * -22.5 / 1 = -11.25;  0.5 * 7.5 / 2 = 1.875;  0.5 * 7.5 / 1 = 3.75;
    #             0.5 * 7.5 / 3 = 1.25
    #   d/d log_z = 0.5 * delta = [-11.25, 3.75, 3.75, 3.75]: the correct answer's probability
    #   is pushed up, the wrong ones down, and the shared log Z gets a net 0 (r_hat sums to 0).
    logp = torch.tensor([[-2.0, 0.0, 0.0], [-1.0, -3.0, 0.0], [-4.0, 0.0, 0.0],
                         [-1.0, -1.0, -1.0]], dtype=F64, requires_grad=True)
    mask = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 0, 0], [1, 1, 1]], dtype=torch.bool)
    r_hat = torch.tensor([1.5, -0.5, -0.5, -0.5], dtype=F64)
    log_z = torch.zeros(4, dtype=F64, requires_grad=True)
    loss, metrics = flowrl_loss(logp, logp.detach(), logp.detach(), mask, r_hat, log_z)
    loss.backward()
    close(loss.detach(), 168.75)
    close(logp.grad, [[-11.25, 0, 0], [1.875, 1.875, 0], [3.75, 0, 0], [1.25, 1.25, 1.25]])
    close(log_z.grad, [-11.25, 3.75, 3.75, 3.75])
    assert metrics["delta_abs"] == pytest.approx((22.5 + 3 * 7.5) / 4)


def test_one_token_response():
    # logp = -0.5, logp_ref = -1, r_hat = 0, log_z = 0.5: delta = 0.5 - 0.5 - 0 + 1 = 1
    # loss = 1, d/d logp = (2/1) * 1 * 1 / 1 = 2, d/d log_z = 2
    logp = torch.tensor([[-0.5]], dtype=F64, requires_grad=True)
    log_z = torch.tensor([0.5], dtype=F64, requires_grad=True)
    loss, _ = flowrl_loss(logp, torch.tensor([[-1.0]], dtype=F64), logp.detach(),
                          torch.tensor([[True]]), torch.zeros(1, dtype=F64), log_z)
    loss.backward()
    close(loss.detach(), 1.0)
    close(logp.grad, [[2.0]])
    close(log_z.grad, [2.0])


# ----------------------------------------------------------------------------------------------
# flowrl_loss: properties

@pytest.mark.parametrize("weight", ["none", "raw", "cap", "clip"])
def test_first_pass_weight_is_exactly_one(weight):
    # On a fresh rollout pi_theta == pi_old: the log-ratio is 0 token by token, w = exp(0) = 1,
    # which no cap or clip changes. The loss is then the plain trajectory-balance loss.
    g = torch.Generator().manual_seed(0)
    logp = -torch.rand(4, 5, generator=g) * 3
    mask = torch.rand(4, 5, generator=g) < 0.7
    mask[:, 0] = True
    r_hat, log_z = torch.randn(4, generator=g), torch.randn(4, generator=g)
    args = (logp, logp - 0.1, logp.clone(), mask, r_hat, log_z)
    loss, metrics = flowrl_loss(*args, weight=weight)
    loss_none, _ = flowrl_loss(*args, weight="none")
    assert metrics["w_mean"] == 1.0 and metrics["w_clipped_frac"] == 0.0
    assert torch.equal(loss, loss_none)


def test_padding_changes_neither_loss_nor_gradient():
    # The batch, padded with garbage, against each response scored on its own without padding:
    # loss = mean of the single-response losses, and each row's gradient is 1/B of its own.
    rows = [([-1.0, -2.0], [-1.5, -0.5], [-1.2, -1.9]),
            ([-0.3], [-0.2], [-0.4]),
            ([-2.0, -1.0, -0.5], [-1.0, -1.0, -1.0], [-2.5, -1.0, -0.1])]
    r_hat, log_z0 = [0.7, -1.1, 0.4], [1.0, -0.5, 0.2]
    B, N = 3, 3
    pad = {"logp": -float("inf"), "logp_ref": 1e30, "logp_old": float("nan")}
    padded = {k: torch.full((B, N), v) for k, v in pad.items()}
    mask = torch.zeros(B, N, dtype=torch.bool)
    for i, (lp, lp_ref, lp_old) in enumerate(rows):
        n = len(lp)
        padded["logp"][i, :n], padded["logp_ref"][i, :n], padded["logp_old"][i, :n] = (
            torch.tensor(lp), torch.tensor(lp_ref), torch.tensor(lp_old))
        mask[i, :n] = True
    for weight in ["none", "raw", "cap", "clip"]:
        logp = padded["logp"].clone().requires_grad_(True)
        log_z = torch.tensor(log_z0, requires_grad=True)
        loss, _ = flowrl_loss(logp, padded["logp_ref"], padded["logp_old"], mask,
                              torch.tensor(r_hat), log_z, weight=weight)
        loss.backward()
        assert torch.isfinite(loss)
        assert torch.equal(logp.grad[~mask], torch.zeros(int((~mask).sum())))
        single = []
        for i, (lp, lp_ref, lp_old) in enumerate(rows):
            logp_i = torch.tensor([lp], requires_grad=True)
            log_z_i = torch.tensor(log_z0[i:i + 1], requires_grad=True)
            loss_i, _ = flowrl_loss(logp_i, torch.tensor([lp_ref]), torch.tensor([lp_old]),
                                    torch.ones(1, len(lp), dtype=torch.bool),
                                    torch.tensor(r_hat[i:i + 1]), log_z_i, weight=weight)
            loss_i.backward()
            single.append(loss_i.detach())
            torch.testing.assert_close(logp.grad[i, :len(lp)], logp_i.grad[0] / B)
            torch.testing.assert_close(log_z.grad[i], log_z_i.grad[0] / B)
        torch.testing.assert_close(loss.detach(), torch.stack(single).mean())


@pytest.mark.parametrize("logp_norm", ["mean", "sum"])
@pytest.mark.parametrize("weight", ["none", "raw", "cap", "clip"])
def test_flowrl_gradcheck(weight, logp_norm):
    # w is detached, so the loss's gradient treats it as a constant, while a finite difference
    # in logp would also move w. Deriving logp_old from the (perturbed) logp inside the checked
    # function keeps the log-ratio, and so w, fixed: then both must agree. Ratios 20, 3, 1/4
    # make the cap bind on the first response and the clip on all three.
    g = torch.Generator().manual_seed(1)
    logp = (-torch.rand(3, 4, generator=g, dtype=F64) * 2).requires_grad_(True)
    log_z = torch.randn(3, generator=g, dtype=F64).requires_grad_(True)
    logp_ref = -torch.rand(3, 4, generator=g, dtype=F64) * 2
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)
    shift = torch.zeros(3, 4, dtype=F64)
    shift[:, 0] = torch.tensor([20.0, 3.0, 0.25], dtype=F64).log()
    r_hat = torch.randn(3, generator=g, dtype=F64)

    def f(logp, log_z):
        return flowrl_loss(logp, logp_ref, logp.detach() - shift, mask, r_hat, log_z,
                           beta=2.0, weight=weight, logp_norm=logp_norm)[0]

    assert torch.autograd.gradcheck(f, (logp, log_z))


def test_raw_weight_overflow_is_loud_cap_is_not():
    # A sequence whose log-ratio sums to 1000 (float32 exp overflows past 88.7): the cap maps
    # w = inf to 10 and the loss stays finite; "raw" gives a non-finite loss on purpose.
    logp = torch.full((1, 2), -1.0)
    logp_old = torch.tensor([[-501.0, -501.0]])
    args = (logp, logp, logp_old, torch.ones(1, 2, dtype=torch.bool), torch.ones(1), torch.ones(1))
    loss, metrics = flowrl_loss(*args, beta=2.0, weight="cap")
    assert metrics["w_mean"] == 10.0 and metrics["w_clipped_frac"] == 1.0
    close(loss, 10.0 * (1 - 2) ** 2)
    loss_raw, _ = flowrl_loss(*args, beta=2.0, weight="raw")
    assert not torch.isfinite(loss_raw)


def test_bad_inputs_raise():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="'none', 'raw', 'cap', 'clip'"):
        flowrl_loss(x, x, x, x > -1, torch.zeros(2), torch.zeros(2), weight="ppo")
    empty_row = torch.tensor([[True, True, False], [False, False, False]])
    with pytest.raises(ValueError, match="at least one mask token"):
        flowrl_loss(x, x, x, empty_row, torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match="logp_norm must be one of"):
        flowrl_loss(x, x, x, x > -1, torch.zeros(2), torch.zeros(2), logp_norm="max")


# ----------------------------------------------------------------------------------------------
# Distribution matching (the paper's Figure 1 and Proposition 1)
#
# 12 possible answers, each a one-token "response". The reward has three modes: answer 2
# (reward 1.0), answer 6 (0.8) and answer 9 (0.9); the reference prefers later answers. With a
# raw reward r (no group normalisation) the target is exactly p* = pi_ref * exp(beta r) / Z.
# FlowRL should reach p* with all three modes and learn log Z; GRPO, a reward maximiser,
# should pile everything onto answer 2. The toy itself, train_toy_distribution, is in flowrl.py.

def test_flowrl_matches_the_reward_distribution_grpo_collapses():
    # Reached with seed 0 and 200 steps (both runs together take under a second):
    #   FlowRL: KL(policy || p*) < 1e-4, log Z = 1.7512 vs true 1.7512; all three modes kept
    #           (p* = 0.19, 0.16, 0.29 at answers 2, 6, 9).
    #   GRPO:   KL = 1.63, policy(answer 2) = 0.998 while p*(answer 2) = 0.19, so
    #           KL ~= -log 0.19 = 1.6: collapse onto the single highest reward.
    flow = train_toy_distribution("flowrl", seed=0)
    assert flow["kl"] < 0.05
    assert abs(flow["log_z"] - flow["true_log_z"]) < 0.1
    assert (flow["policy"][[2, 6, 9]] > 0.1).all()

    grpo = train_toy_distribution("grpo", seed=0)
    assert grpo["kl"] > 1.0
    assert grpo["policy"][2] > 0.95


@pytest.mark.parametrize("groups", [(8, 8), (64, 1)])
@pytest.mark.parametrize("log_z", ["mean", "logmeanexp"])
def test_flowrl_matches_the_reward_distribution_with_log_z_from_the_group(log_z, groups):
    # The toy has one prompt, so every sample of a step comes from the same distribution and
    # any split into groups is valid: 8 groups of 8 (each its own estimate of log Z, as in
    # training with G = 8) or all 64 samples as one group. At p* every c_i = log pi_ref +
    # beta r - log pi equals the true log Z, so both estimators are exact there: the fixed point
    # of the learned log Z is kept, and nothing has to learn log Z on the way.
    # Reached with seed 0 and 200 steps, in each of the four cases: KL(policy || p*) < 1e-8
    # (the head: 1.6e-9), the last step's estimate = true log Z = 1.7512 to 1e-4.
    group_size, n_groups = groups
    flow = train_toy_distribution("flowrl", seed=0, log_z=log_z, group_size=group_size,
                                  n_groups=n_groups)
    assert flow["kl"] < 1e-6
    assert abs(flow["log_z"] - flow["true_log_z"]) < 1e-3
    assert (flow["policy"][[2, 6, 9]] > 0.1).all()


# ----------------------------------------------------------------------------------------------
# The fixed point with responses of two lengths: token sums reach p*, token means a target
# tilted by the length
#
# A tabular autoregressive policy: the first token is a, b or c; a and b end the response, c is
# followed by a second token, a or b. So four responses, two of each length:
#
#   y          a      b      ca            cb
#   |y|        1      1      2             2
#   pi_ref     0.5    0.2    0.3 * 0.6     0.3 * 0.4       = [0.5, 0.2, 0.18, 0.12]
#   r          1      0      0             1               raw reward, beta = 1
#
# Token sums: delta = log Z + log pi(y) - log pi_ref(y) - beta r(y) = 0 for every y gives
#   pi(y) = pi_ref(y) e^(beta r(y)) / Z = p*(y),  Z = 0.5 e + 0.2 + 0.18 + 0.12 e = 0.62 e + 0.38
#   Z = 2.065335, log Z = 0.725292,  p* = [0.5 e, 0.2, 0.18, 0.12 e] / Z
#                                       = [0.658073, 0.096837, 0.087153, 0.157938]
# Token means: delta = log Z + (log pi(y) - log pi_ref(y)) / |y| - beta r(y) = 0 gives
#   pi(y) = pi_ref(y) e^(|y| (beta r(y) - log Z))
# and the normalisation sum_y pi(y) = 1 fixes log Z. With u = e^(-log Z):
#   pi = [0.5 e u, 0.2 u, 0.18 u^2, 0.12 e^2 u^2]
#   (0.18 + 0.12 e^2) u^2 + (0.5 e + 0.2) u - 1 = 0,  a quadratic: A u^2 + B u - 1 = 0 with
#   A = 1.066687, B = 1.559141, u = (-B + sqrt(B^2 + 4 A)) / (2 A) = 0.482262
#   log Z = -ln u = 0.729268,  pi = [0.655462, 0.096452, 0.041864, 0.206222]
# The two-token responses move most: ca 0.042 against 0.087 under p*, cb 0.206 against 0.158.
#
# Training: the four responses are enumerated and each enters the loss once per step (exact
# and deterministic, no sampling). Every delta can be 0 at once, so the minimum of the loss
# (zero) is the fixed point whatever weight each response gets in the batch; on-policy
# sampling would reach the same point, noisily.

def two_length_table(first, second):
    """(4, 2) token log-probs of the responses a, b, ca, cb from the logits of the first token
    (3,) over [a, b, c] and of the token after c (2,) over [a, b]; 0 in the unused slots."""
    lp1, lp2 = first.log_softmax(0), second.log_softmax(0)
    zero = torch.zeros((), dtype=lp1.dtype)
    return torch.stack([torch.stack([lp1[0], zero]), torch.stack([lp1[1], zero]),
                        torch.stack([lp1[2], lp2[0]]), torch.stack([lp1[2], lp2[1]])])


@pytest.mark.parametrize("logp_norm", ["sum", "mean"])
def test_fixed_point_sum_is_p_star_mean_is_length_tilted(logp_norm):
    e = math.e
    Z = 0.62 * e + 0.38
    p_star = torch.tensor([0.5 * e, 0.2, 0.18, 0.12 * e], dtype=F64) / Z
    A, B = 0.18 + 0.12 * e ** 2, 0.5 * e + 0.2
    u = (-B + math.sqrt(B ** 2 + 4 * A)) / (2 * A)
    tilted = torch.tensor([0.5 * e * u, 0.2 * u, 0.18 * u ** 2, 0.12 * e ** 2 * u ** 2], dtype=F64)
    close(tilted.sum(), 1.0, tol=1e-12)  # the root normalises the tilted target
    assert (tilted - p_star).abs().max() > 0.04  # the two targets differ: the test can tell them apart
    target, target_log_z = (p_star, math.log(Z)) if logp_norm == "sum" else (tilted, -math.log(u))

    ref_first = torch.tensor([0.5, 0.2, 0.3], dtype=F64).log()
    ref_second = torch.tensor([0.6, 0.4], dtype=F64).log()
    logp_ref = two_length_table(ref_first, ref_second)
    mask = torch.tensor([[1, 0], [1, 0], [1, 1], [1, 1]], dtype=torch.bool)
    r = torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=F64)
    first = ref_first.clone().requires_grad_(True)  # the policy starts as the reference
    second = ref_second.clone().requires_grad_(True)
    log_z = torch.zeros((), dtype=F64, requires_grad=True)  # a single prompt: one scalar
    opt = torch.optim.Adam([first, second, log_z], lr=0.05)
    for _ in range(500):
        logp = two_length_table(first, second)
        loss, _ = flowrl_loss(logp, logp_ref, logp.detach(), mask, r, log_z.expand(4), beta=1.0,
                              logp_norm=logp_norm)
        opt.zero_grad()
        loss.backward()
        opt.step()
    # Reached after 500 steps: the policy and log Z within 1e-11 of the target (in either mode)
    policy = two_length_table(first, second).detach().sum(dim=1).exp()  # (4,) pi(y), 0 in unused slots
    close(policy, target, tol=1e-6)
    assert abs(log_z.item() - target_log_z) < 1e-6
