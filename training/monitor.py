"""
What an RL step reports beside the loss, and how fast the run goes.

- rollout_stats: the reward's mean and spread, the fraction of groups whose rewards are all equal
  (their r_hat is 0: GRPO learns nothing from them, FlowRL only its KL-like pull), response
  lengths and the fraction cut at max_new_tokens.
- token_stats: on the sampled tokens, the policy's entropy (of the distribution sampled from) and
  the KL to pi_ref, k3 = exp(lr) - lr - 1 with lr = logp_ref - logp (an unbiased, non-negative
  estimate of KL(pi || pi_ref) per token, as GRPO's penalty uses it); both at the rollouts'
  temperature, untruncated by top-k / top-p, as RL's log-probs are (train.sampling).
- Speed: seconds per step, an ETA, and MFU: the FLOPs of a step's model passes over what the
  devices do in that time (under torchrun the tokens of all ranks against the peak of all). A pass costs 2 N FLOPs a token forward and 4 N backward, N the
  parameters that multiply (all but the input embedding); attention's own FLOPs are left out
  (at the toy's 128 positions they are a few percent). The peak is the GPU's bf16 dense rate
  where PEAK names the device, else a float32 / bf16 matmul rate measured at start.
- Board: the same scalars for TensorBoard (--tensorboard), when the package is installed.
"""
import time

import torch

from flowrl import k3
from sample import eos_ids

# bf16 dense FLOP/s from the vendors' sheets, the first name contained in the device's that counts
PEAK = {"H100 PCIe": 756e12, "H100 NVL": 835e12, "H100": 989e12, "H200": 989e12, "A100": 312e12}


def rollout_stats(d, rollout, rewards, group_size, max_new_tokens, eos_id):
    """Reward and response-length statistics of a step's rollout, over all ranks (n_tokens and
    n_prompt_tokens: the response and prompt tokens of the whole rollout, for the speed figures)."""
    lengths = rollout.response_mask.sum(1)  # (B,)
    last = rollout.response_ids.gather(1, (lengths - 1).clamp(min=0).unsqueeze(1)).squeeze(1)  # (B,)
    ended = torch.isin(last, torch.tensor(eos_ids(eos_id), dtype=last.dtype, device=last.device))  # no eos: none
    cut = ((lengths == max_new_tokens) & ~ended).sum().item()
    groups = rewards.view(-1, group_size)  # (B / G, G): each rank holds whole groups
    equal = (groups == groups[:, :1]).all(1).sum().item()
    n, s, s2, n_groups, n_equal, n_cut, n_tokens, n_prompt = d.all_reduce(
        [len(rewards), rewards.sum().item(), rewards.pow(2).sum().item(), len(groups), equal, cut, lengths.sum().item(),
         rollout.prompt_mask.sum().item()])
    longest = d.all_reduce([lengths.max().item()], op="max")[0]
    mean = s / n
    return dict(reward=mean, reward_std=max(s2 / n - mean * mean, 0.0) ** 0.5, groups_equal=n_equal / n_groups,
                response_length=n_tokens / n, response_length_max=longest, truncated=n_cut / n, n_tokens=n_tokens,
                n_prompt_tokens=n_prompt)


def token_stats(d, mask, logp, logp_ref, entropy):
    """Mean per sampled token, over all ranks, of the entropy and of k3, the KL to pi_ref.
    mask, logp, logp_ref, entropy: (B, N) each (logp: the policy at sampling, pi_old)."""
    kl = k3(logp[mask], logp_ref[mask])  # (M,)
    n, h, k = d.all_reduce([mask.sum().item(), entropy[mask].sum().item(), kl.sum().item()])
    return dict(entropy=h / n, kl_ref=k / n)


def matmul_rate(device, threads=None):
    """FLOP/s of a large matmul on device: float32 on a CPU (on `threads` threads), bf16 on a GPU."""
    dtype, n = (torch.bfloat16, 4096) if device.type == "cuda" else (torch.float32, 512)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(5):  # the best of 5 timings of 4 products: the rate the device reaches
        sync(device)
        t0 = time.perf_counter()
        for _ in range(4):
            a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    torch.set_num_threads(before)
    return 4 * 2 * n ** 3 / best


def sync(device):  # kernels run asynchronously on a GPU: wait before reading the clock
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def peak_rate(device):
    """(FLOP/s, where it comes from) that MFU is measured against."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        known = next((v for k, v in PEAK.items() if k in name), None)
        if known:
            return known, f"{name}: {known / 1e12:.0f} TFLOP/s bf16 dense"
        rate = matmul_rate(device)
        return rate, f"{name}: bf16 matmul measured at {rate / 1e12:.1f} TFLOP/s"
    one = matmul_rate(device, threads=1)
    rate = matmul_rate(device) if torch.get_num_threads() > 1 else one
    return rate, (f"{device.type}: float32 matmul {one / 1e9:.0f} GFLOP/s on 1 thread"
                  + (f", {rate / 1e9:.0f} GFLOP/s on {torch.get_num_threads()}" if torch.get_num_threads() > 1 else ""))


def multiplying_params(model):
    """N of the FLOP count: every parameter but the input embedding's (a lookup, not a matmul)."""
    embedding = model.model.embed_tokens.weight
    tied = model.lm_head.weight is embedding
    return sum(p.numel() for p in model.parameters()) - (0 if tied else embedding.numel())


class Speed:
    """Seconds per step, the ETA (the mean over the steps so far, evaluations included, times the
    steps left) and MFU of one RL step. passes: forward-equivalents per token (sampling 1, pi_old 1,
    pi_ref 1, training 3, and 1 more under --grad_ckpt)."""

    def __init__(self, n_params, peak, first_step, last_step, grad_ckpt):
        self.n_params, self.peak, self.first, self.last = n_params, peak, first_step, last_step
        self.passes, self.t0 = 6 + grad_ckpt, time.time()

    def step(self, step, seconds, n_tokens):
        """n_tokens: prompt and response tokens of the step's rollout, over all ranks."""
        per_step = (time.time() - self.t0) / (step - self.first + 1)
        flops = 2 * self.n_params * n_tokens * self.passes
        return dict(step_s=seconds, eta_s=per_step * (self.last - step), mfu=flops / seconds / self.peak)


class Board:
    """--tensorboard: every number of every metrics row as a scalar, tagged phase/stage/key."""

    def __init__(self, out_dir, enabled, resumed=None):
        """resumed: on --resume, "<stage>_<step>" of the checkpoint. A resumed run writes to its own
        subdirectory, tensorboard/resumed_<stage>_<step>, a run of its own in TensorBoard: events
        cannot be taken back, so steps an interrupted run logged past its checkpoint stay in
        the earlier one."""
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                print("--tensorboard: the tensorboard package is not installed (pip install tensorboard); "
                      "metrics.jsonl has the same numbers", flush=True)
                return
            self.writer = SummaryWriter(f"{out_dir}/tensorboard" + (f"/resumed_{resumed}" if resumed else ""))

    def add(self, record):
        if self.writer:
            for k, v in record.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "step":
                    self.writer.add_scalar(f"{record['phase']}/{record['stage']}/{k}", v, record["step"])
            self.writer.flush()
