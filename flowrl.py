"""
The FlowRL objective (Zhu et al., "FlowRL: Matching Reward Distributions for LLM Reasoning",
arXiv 2509.15207), its log Z head, and the GRPO loss it is compared against.

FlowRL moves the policy toward the reward-weighted reference distribution

    p*(y|x) = pi_ref(y|x) * exp(beta * r_hat(x, y)) / Z(x)

by minimising, over a batch of B sampled responses y_i to prompts x_i,

    lp_i     = (1/|y_i|) * sum_t log pi_theta(y_t | x_i, y_<t)       token MEAN over the mask
    lp_ref_i = (1/|y_i|) * sum_t log pi_ref(y_t | x_i, y_<t)         same mask
               (logp_norm="sum": both without the 1/|y_i|, exact trajectory balance)
    delta_i  = log Z(x_i) + lp_i - beta * r_hat_i - lp_ref_i
    w_i      = stopgrad( exp( sum_t [log pi_theta - log pi_old] ) )  token SUM, then capped
    loss     = (1/B) * sum_i  w_i * delta_i^2

The loss is minimal when delta_i = 0 for every y: a whole distribution, not the single best
answer. With the token sum, delta = 0 is log pi_theta(y) = log pi_ref(y) + beta r_hat - log Z,
exactly pi_theta = p*, and Proposition 1 of the paper holds: in expected gradient this squared
loss is the reverse KL( pi_theta || p* ). With the token mean (the default, point 2 below),
delta = 0 is

    log pi_theta(y) - log pi_ref(y) = |y| * (beta * r_hat - log Z)

a target tilted by the length |y|, which equals p* only where all responses have one length
(one-token responses: the Figure-1 toy below). test_flowrl.py checks both fixed points on a
problem with responses of two lengths; the README derives them and says when they are reached.

Where this file follows the official code rather than the paper's text, and why:
1. w is capped, min(w, 10), instead of clipped to [1 - 0.2, 1 + 0.2] as the paper writes.
   w is a ratio of whole-sequence probabilities; over hundreds of tokens it is rarely inside
   [0.8, 1.2], so a PPO-style clip would set almost every off-policy w to 0.8 or 1.2. A cap
   keeps ordinary ratios as they are and only bounds the rare huge ones. weight="clip" gives
   the paper's version, weight="raw" the first code release (no bound), weight="none" w = 1.
2. The log-ratio inside w is a token SUM, the log-probs inside delta a token MEAN. Importance
   sampling needs the ratio of sequence probabilities (the sum); the mean keeps delta on the
   scale of beta * r_hat whatever the length (a 500-token sum of log-probs is several hundred,
   which would drown beta * r_hat), at the price of the length-tilted fixed point above.
   logp_norm="sum" puts token sums in delta too (the paper's equations, exact trajectory
   balance); w stays a token sum either way.
3. r_hat is the group z-score of the task reward (group_normalize), as GRPO's advantage, not
   the raw reward r of the paper's equations, so beta = 15 means the same for any reward scale.
   reward_target(..., "raw") gives the paper's r, fixed per answer whatever the group.
4. log Z is learned by LogZHead and not detached: the gradient of delta^2 flows through the
   head into the language model's hidden states (the authors report that detaching lowered
   accuracy). To detach, pass hidden.detach() to LogZHead.
5. There is no separate KL penalty to pi_ref (GRPO's kl term): the reference enters only as
   -lp_ref inside delta, which already puts pi_ref into the target p*.

Where this file departs from both: log_z="mean" / "logmeanexp" (group_log_z) are estimators
from later work, in neither the paper nor the official code: they estimate log Z from the
rollout group instead of learning it, by least squares (the log-variance or VarGrad loss) or
by importance sampling.
"""
import math

import torch
import torch.nn as nn

WEIGHT_MODES = ("none", "raw", "cap", "clip")
LOGP_NORMS = ("mean", "sum")
LOG_Z_ESTIMATORS = ("mean", "logmeanexp")
REWARD_NORMS = ("group", "raw")


def _masked(x, mask):
    """x where mask is True, 0 elsewhere, in float32 (or wider, e.g. float64 in gradient checks).

    torch.where rather than x * mask: padded slots may hold anything, and 0 * inf is NaN.
    The gradient of torch.where is 0 at unselected slots, so padding gets no gradient either.
    """
    dtype = torch.promote_types(x.dtype, torch.float32)
    return torch.where(mask, x.to(dtype), 0.0)


def group_normalize(rewards, group_size, eps=1e-6):
    """Group z-score of the rewards (the same r_hat for FlowRL and GRPO).

        r_hat_i = (R_i - mean_g(R)) / (std_g(R) + eps)

    over each group g of `group_size` consecutive rewards, std with Bessel's correction
    (divides by n - 1). rewards (B,) float, B a multiple of group_size. A group of one, or a
    group whose rewards are all equal, gets r_hat = 0: there is nothing to compare against.
    """
    B = rewards.shape[0]
    if rewards.dim() != 1 or B % group_size != 0:
        raise ValueError(f"rewards must be 1-D with a length that is a multiple of group_size "
                         f"({group_size}), got shape {tuple(rewards.shape)}")
    if group_size == 1:
        return torch.zeros_like(rewards)  # Bessel's std of one sample is 0/0
    R = rewards.view(B // group_size, group_size)  # (num_groups, G)
    mean = R.mean(dim=1, keepdim=True)  # (num_groups, 1)
    std = R.std(dim=1, keepdim=True)  # (num_groups, 1), Bessel's correction is torch's default
    r_hat = (R - mean) / (std + eps)  # (num_groups, G)
    # Equal rewards must give exactly 0, but R - mean can be a rounding error instead of 0
    # (eight float32 rewards of 0.3 give 3e-8), which dividing by eps would blow up to 0.03.
    same = R.amax(dim=1, keepdim=True) == R.amin(dim=1, keepdim=True)  # (num_groups, 1)
    r_hat = torch.where(same, 0.0, r_hat)
    return r_hat.view(B)


def reward_target(rewards, group_size, how="group"):
    """r_hat, the reward inside the target p* = pi_ref * exp(beta * r_hat) / Z.

        "group"  r_hat = group_normalize(rewards, group_size)   official code (default)
        "raw"    r_hat = R, the task reward as it is              the paper's equations

    The z-score makes beta mean the same for any reward scale, but one answer's r_hat moves
    with its group, so no policy sets every delta to 0; a raw reward is fixed per answer.
    """
    if how not in REWARD_NORMS:
        raise ValueError(f"reward norm must be one of {REWARD_NORMS}, got {how!r}")
    return group_normalize(rewards, group_size) if how == "group" else rewards


class LogZHead(nn.Module):
    """log Z_phi(x), the learned log partition function of the prompt x.

        pooled = sum_t m_t * h_t / sum_t m_t          m = prompt mask, h = final hidden states
        log Z  = Linear(H, 1)( n_layers - 1 times [Linear(H, H) -> GELU -> LayerNorm -> Dropout] )

    The official head has n_layers = 3 (two hidden blocks) and dropout 0.1. Only used in the
    loss: never at sampling time, and not part of an exported language model.
    """

    def __init__(self, hidden_size, n_layers=3, dropout=0.1):
        super().__init__()
        H = hidden_size
        blocks = []
        for _ in range(n_layers - 1):
            blocks += [nn.Linear(H, H), nn.GELU(), nn.LayerNorm(H), nn.Dropout(dropout)]
        self.mlp = nn.Sequential(*blocks, nn.Linear(H, 1))

    def forward(self, hidden, prompt_mask):
        """hidden (B, T, H) final hidden states (after the final norm), prompt_mask (B, T) bool.
        Returns log Z (B,) in the head's dtype: keep the head in float32."""
        n = prompt_mask.sum(dim=1, keepdim=True)  # (B, 1) prompt lengths
        if (n == 0).any():
            raise ValueError("LogZHead: every row needs at least one prompt token")
        # Computed in float32 even when the language model runs in bf16 (autocast off, explicit
        # cast): delta adds log Z to terms as large as beta * r_hat (about 37 at beta = 15) and
        # the loss drives it toward 0; bf16 keeps 8 significant bits, steps of 0.25 near 37.
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            h = hidden.to(self.mlp[-1].weight.dtype)  # (B, T, H)
            h = torch.where(prompt_mask.unsqueeze(-1), h, 0.0)  # (B, T, H) non-prompt slots -> 0
            pooled = h.sum(dim=1) / n  # (B, H) mean over prompt tokens
            return self.mlp(pooled).squeeze(-1)  # (B,)


def group_log_z(c, group_size, estimator):
    """log Z(x) estimated from the rollout group of x instead of learned, with no gradient.
    c (B,): c_i = beta * r_hat_i + lp_ref_i - lp_i, so delta_i = log Z(x_i) - c_i; the rows are
    groups of group_size consecutive responses to one prompt. Over a group g:

        "mean"        log Z_g = (1/G) * sum_{i in g} c_i
        "logmeanexp"  log Z_g = log( (1/G) * sum_{i in g} exp(c_i) )

    "mean" is the least-squares value, argmin_z sum_{i in g} (z - c_i)^2, so the loss becomes
    the group's variance of the residual (the log-variance or VarGrad loss). "logmeanexp" is the
    importance-sampling estimate of Z = E_{y ~ pi_theta}[ pi_ref(y) e^(beta r_hat) / pi_theta(y) ]
    (unbiased for Z with token sums on a fresh rollout). Jensen: logmeanexp >= mean, equal when
    the c_i of a group are equal, as at the fixed point. Returns (B,), each row its group's value.
    """
    if estimator not in LOG_Z_ESTIMATORS:
        raise ValueError(f"log_z must be a (B,) tensor or one of {LOG_Z_ESTIMATORS}, "
                         f"got {estimator!r}")
    B = c.shape[0]
    if not group_size or B % group_size != 0:
        raise ValueError(f"log_z={estimator!r} needs whole groups: the batch of {B} rows is not a "
                         f"multiple of group_size ({group_size})")
    c = c.detach().view(B // group_size, group_size)  # (num_groups, G)
    if estimator == "mean":
        log_z = c.mean(dim=1, keepdim=True)  # (num_groups, 1)
    else:  # logsumexp, since exp(c_i) alone overflows float32 past 88 (token sums reach that)
        log_z = torch.logsumexp(c, dim=1, keepdim=True) - math.log(group_size)  # (num_groups, 1)
    return log_z.expand(-1, group_size).reshape(B)  # (B,)


def flowrl_loss(logp, logp_ref, logp_old, mask, r_hat, log_z, *, beta=15.0, weight="cap",
                weight_cap=10.0, clip_eps=0.2, logp_norm="mean", group_size=None):
    """The FlowRL loss (module docstring for the equation and its sources).

    logp, logp_ref, logp_old: (B, N) per-token log-probs of the sampled responses under the
    current policy (with grad), the frozen reference and the sampling-time policy; mask (B, N)
    bool marks the response tokens trained on (EOS included). r_hat (B,). Every row needs at
    least one mask token. beta = 15 and weight_cap = 10 are the official defaults, clip_eps = 0.2
    the paper's.

    log_z: (B,) tensor, LogZHead's output with grad (official code); or "mean" / "logmeanexp":
    group_log_z of this batch's own c_i = beta r_hat_i + lp_ref_i - lp_i, detached, over groups
    of group_size consecutive rows. The rest is unchanged: delta_i = log Z_g - c_i. With "mean"
    and w = 1 (a fresh rollout) the loss is the mean over groups of the variance of c (over G);
    its gradient per lp_i, (2/B) * delta_i, is the same whether or not the mean is detached,
    as deviations from a mean sum to 0. Off-policy it stays the plain, not w-weighted, mean.

    weight: how w_i = exp(sum_t [logp - logp_old]) is bounded before it multiplies delta_i^2:
        "cap"  min(w, weight_cap)                 current official code (default)
        "clip" clamp(w, 1 - clip_eps, 1 + clip_eps)  paper's text
        "raw"  w unbounded                        first code release
        "none" w = 1                              pure on-policy trajectory balance
    On the first pass over a fresh rollout logp == logp_old, so w == 1 exactly in every mode.

    logp_norm: how delta sees the log-probs of a response (w is a token sum in both):
        "mean" (1/|y_i|) * sum_t                  official code (default): length-tilted fixed point
        "sum"  sum_t                              the paper's equations: fixed point p*

    Returns (loss, metrics): loss a scalar tensor, metrics a dict of Python floats.
    """
    if weight not in WEIGHT_MODES:
        raise ValueError(f"weight must be one of {WEIGHT_MODES}, got {weight!r}")
    if logp_norm not in LOGP_NORMS:
        raise ValueError(f"logp_norm must be one of {LOGP_NORMS}, got {logp_norm!r}")
    n = mask.sum(dim=1)  # (B,) |y_i|
    if (n == 0).any():
        raise ValueError("flowrl_loss: every response needs at least one mask token")

    logp_m = _masked(logp, mask)  # (B, N), 0 at padding
    norm = n if logp_norm == "mean" else torch.ones_like(n)  # (B,) divide by |y_i|, or by 1
    lp = logp_m.sum(dim=1) / norm  # (B,) token mean, or sequence sum
    lp_ref = _masked(logp_ref, mask).sum(dim=1) / norm  # (B,)
    if isinstance(log_z, str):
        log_z = group_log_z(beta * r_hat + lp_ref - lp, group_size, log_z)  # (B,) detached
    delta = log_z + lp - beta * r_hat - lp_ref  # (B,)

    # Per-token difference first, then the sum: two sums of hundreds of log-probs subtracted
    # afterwards would lose the small ratio to float32 rounding.
    log_w = (logp_m - _masked(logp_old, mask)).sum(dim=1).detach()  # (B,) token sum
    # exp may overflow to inf for a very off-policy sequence. For "cap" and "clip" that is
    # harmless: clamp maps inf to the bound. For "raw" it is left alone on purpose: a sequence
    # e^89 times likelier than when it was sampled makes the estimate meaningless, so the loss
    # turns inf/NaN and the trainer's non-finite check stops the run instead of hiding it.
    w_raw = torch.exp(log_w)  # (B,)
    if weight == "none":
        w = torch.ones_like(w_raw)
    elif weight == "raw":
        w = w_raw
    elif weight == "cap":
        w = w_raw.clamp(max=weight_cap)
    else:  # "clip"
        w = w_raw.clamp(1 - clip_eps, 1 + clip_eps)

    loss = (w * delta.pow(2)).mean()

    changed = (w != w_raw) if weight in ("cap", "clip") else torch.zeros_like(w, dtype=torch.bool)
    metrics = {
        "delta_abs": delta.detach().abs().mean().item(),
        "w_mean": w.mean().item(),
        "w_clipped_frac": changed.float().mean().item(),
        "log_z": log_z.detach().mean().item(),
        "logp": lp.detach().mean().item(),
        "logp_ref": lp_ref.detach().mean().item(),
    }
    return loss, metrics


def k3(logp, logp_ref):
    """The "k3" estimate of KL(pi || pi_ref) per sampled token, exp(l) - l - 1 with
    l = logp_ref - logp: non-negative, unbiased, and 0 where the two agree (0 at padding too)."""
    lr = logp_ref - logp
    return torch.exp(lr) - lr - 1


def grpo_loss(logp, logp_ref, logp_old, mask, adv, *, clip_low=0.2, clip_high=0.2, kl_coef=0.0):
    """The GRPO baseline: PPO's clipped surrogate with a group-normalised advantage.

        rho_t = exp(logp_t - logp_old_t)                                   per token
        l_t   = -min( rho_t * A_i, clip(rho_t, 1 - clip_low, 1 + clip_high) * A_i )
        kl_t  = exp(lr_t) - lr_t - 1,   lr_t = logp_ref_t - logp_t          "k3", >= 0
        loss  = sum_{i,t in mask} (l_t + kl_coef * kl_t) / (number of mask tokens in the batch)

    The min is the pessimistic bound: for A > 0 the ratio is cut above 1 + clip_high, for
    A < 0 below 1 - clip_low; on the other side the unclipped term stays active and keeps its
    gradient. The KL is added, so its gradient pulls logp toward logp_ref. clip 0.2 / 0.2 is
    GRPO's default (DAPO raises clip_high to 0.28). Shapes as in flowrl_loss, adv (B,) is A_i.
    A row with no mask tokens simply adds nothing; the batch needs at least one token.
    """
    n = mask.sum()  # scalar, response tokens in the batch
    if n == 0:
        raise ValueError("grpo_loss: the batch has no mask tokens")
    A = adv.unsqueeze(1)  # (B, 1), one advantage per response, shared by its tokens

    logp_m = _masked(logp, mask)  # (B, N), 0 at padding
    rho = torch.exp(logp_m - _masked(logp_old, mask))  # (B, N), 1 at padding
    rho_clip = rho.clamp(1 - clip_low, 1 + clip_high)  # (B, N)
    l = -torch.minimum(rho * A, rho_clip * A)  # (B, N)

    kl = k3(logp_m, _masked(logp_ref, mask))  # (B, N), 0 at padding

    loss = _masked(l + kl_coef * kl, mask).sum() / n

    clipped = rho_clip * A < rho * A  # (B, N) the clipped term is the min
    metrics = {
        "clip_frac": (_masked(clipped, mask).sum() / n).item(),
        "ratio_mean": (_masked(rho.detach(), mask).sum() / n).item(),
        "kl": (_masked(kl.detach(), mask).sum() / n).item(),
    }
    return loss, metrics


# ---- the paper's Figure 1 in miniature -------------------------------------------------------
# 12 possible answers, each a one-token "response". The reward has three modes: answer 2
# (reward 1.0), answer 6 (0.8) and answer 9 (0.9); the reference prefers later answers. With a
# raw reward r (no group normalisation) the target is exactly p* = pi_ref * exp(beta r) / Z.
# FlowRL reaches p* with all three modes, with log Z learned or estimated per group; GRPO, a
# reward maximiser, piles everything onto answer 2 (test_flowrl.py checks both; study/study.py
# draws them).

def toy_distribution(beta=3.0):
    """Reward, reference and target of the toy: (reward, log_ref, log_target, true_log_z)."""
    x = torch.arange(12, dtype=torch.float32)

    def bump(center):
        return torch.exp(-0.5 * ((x - center) / 0.8) ** 2)

    reward = bump(2) + 0.8 * bump(6) + 0.9 * bump(9)  # (12,)
    log_ref = torch.log_softmax(0.1 * x, dim=0)  # (12,) non-uniform reference
    log_target = log_ref + beta * reward  # (12,) unnormalised log p*
    true_log_z = torch.logsumexp(log_target, dim=0)
    return reward, log_ref, log_target - true_log_z, true_log_z.item()


def train_toy_distribution(algo, steps=200, seed=0, beta=3.0, group_size=8, n_groups=8, lr=0.1,
                           log_z="head"):
    """Train a 12-logit softmax policy (started at the reference) with "flowrl" or "grpo" on
    sampled groups, one Adam step per fresh sample (on-policy, so w = 1). One prompt: log_z
    "head" learns one scalar, "mean" / "logmeanexp" estimate it from each group of group_size
    samples. Returns a dict: policy, target, reference, reward (each (12,)), kl = KL(policy ||
    target), kl_curve (one value per step), log_z (learned, or the last step's mean estimate;
    None for grpo), true_log_z."""
    if algo not in ("flowrl", "grpo"):
        raise ValueError(f"algo must be 'flowrl' or 'grpo', got {algo!r}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    reward, log_ref, log_target, true_log_z = toy_distribution(beta)
    logits = log_ref.clone().requires_grad_(True)  # (12,) the policy starts as the reference
    log_z_param = torch.zeros((), requires_grad=True)  # scalar: a single prompt
    learned = algo == "flowrl" and log_z == "head"
    params = [logits, log_z_param] if learned else [logits]
    opt = torch.optim.Adam(params, lr=lr)
    B = group_size * n_groups
    mask = torch.ones(B, 1, dtype=torch.bool)  # every response is exactly one token

    def kl_to_target():
        # both renormalised in float64, so that rounding cannot make the KL negative
        log_p = torch.log_softmax(logits.detach().double(), dim=0)  # (12,)
        log_q = torch.log_softmax(log_target.double(), dim=0)  # (12,)
        return (log_p.exp() * (log_p - log_q)).sum().item()

    kl_curve = []
    for _ in range(steps):
        log_p = torch.log_softmax(logits, dim=0)  # (12,)
        y = torch.multinomial(log_p.detach().exp(), B, replacement=True, generator=gen)  # (B,)
        logp = log_p[y].unsqueeze(1)  # (B, 1)
        logp_ref = log_ref[y].unsqueeze(1)  # (B, 1)
        if algo == "flowrl":
            # r_hat = r, the raw reward, so that the target is exactly pi_ref * exp(beta r) / Z
            r_hat = reward_target(reward[y], group_size, "raw")
            loss, m = flowrl_loss(logp, logp_ref, logp.detach(), mask, r_hat,
                                  log_z_param.expand(B) if learned else log_z, beta=beta,
                                  group_size=group_size)
        else:
            adv = group_normalize(reward[y], group_size)
            loss, _ = grpo_loss(logp, logp_ref, logp.detach(), mask, adv)
        opt.zero_grad()
        loss.backward()
        opt.step()
        kl_curve.append(kl_to_target())

    return dict(policy=torch.softmax(logits.detach(), dim=0), target=log_target.exp(),
                reference=log_ref.exp(), reward=reward, kl=kl_curve[-1], kl_curve=kl_curve,
                log_z=None if algo == "grpo" else log_z_param.item() if learned else m["log_z"],
                true_log_z=true_log_z)


if __name__ == "__main__":
    # The worked example of test_flowrl.py (cap binding): two responses of 2 and 3 tokens.
    nan = float("nan")  # padding may hold anything; the mask keeps it out
    logp = torch.tensor([[-1.0, -2.0, nan], [-1.0, -1.0, -4.0]], requires_grad=True)
    logp_ref = torch.tensor([[-1.0, -1.0, nan], [-1.0, -2.0, -3.0]])
    log_w = torch.tensor([[20.0, 1.0, 1.0], [0.25, 1.0, 1.0]]).log()  # sequence ratios 20, 1/4
    logp_old = logp.detach() - log_w
    mask = torch.tensor([[True, True, False], [True, True, True]])
    r_hat, log_z = torch.tensor([0.5, -0.5]), torch.tensor([2.5, -3.0], requires_grad=True)
    loss, metrics = flowrl_loss(logp, logp_ref, logp_old, mask, r_hat, log_z, beta=2.0)
    loss.backward()
    print(f"loss {loss.item():.4f} (expected 5.5)")
    print("d loss / d logp ", logp.grad.tolist())
    print("d loss / d log_z", log_z.grad.tolist())
    print(metrics)
