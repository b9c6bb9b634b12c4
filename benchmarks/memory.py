"""
Memory of one RL update on one GPU, measured on the CPU and extrapolated:

    python -m benchmarks.sampling --memory          # both widths, 16 minutes on 2 cores
    python -m benchmarks.sampling --memory --sizes 0.5B

Measured on the CPU, on random checkpoints of Qwen2.5's vocabulary and width made by transformers,
with 1 or 2 layers, each configuration in a fresh process: the resident memory of each phase of an
RL update on B rows of P prompt and N response tokens. Under bf16 autocast, as train.py runs on
cuda, so the activations have cuda's dtypes; the policy is float32, the reference bf16. The grad
pass (pi_theta, log Z, the loss, backward) is measured in parts that add up:
  kept   what autograd keeps from forward to backward, measured between the two; it grows with
         the sizes, fitted by  a0 + aL L + B (N b + T L c),  T = P + N
  extra  the most memory above kept during forward (bf16 copies of the weights, logits: fitted
         f0 + f1 L + f2 B N) or backward (a chunk's logits and their gradients, lm_head's weight
         gradient; with whole logits, all their gradients: fitted e0 + e1 B N).
At the README's sizes one more moment counts: a block's backward, which holds that block's
activations (recomputed, with grad_ckpt) and their gradients, up to 2 c m T bytes with c the
per-layer coefficient without grad_ckpt: too small to show at these sizes, except at CHECK.

The README's "Running on a real checkpoint" has the table.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

from flowrl import LogZHead, flowrl_loss
from model import ModelConfig, Transformer
from sample import Rollout, token_logprobs

VOCAB = 151_936  # Qwen2.5's vocabulary
QWEN = {  # Qwen2.5's shapes (their config.json): width, heads, kv heads, MLP width, layers, tied
    "0.5B": dict(hidden_size=896, num_attention_heads=14, num_key_value_heads=2, intermediate_size=4864,
                 num_hidden_layers=24, tie_word_embeddings=True),
    "1.5B": dict(hidden_size=1536, num_attention_heads=12, num_key_value_heads=2, intermediate_size=8960,
                 num_hidden_layers=28, tie_word_embeddings=True),
    "7B": dict(hidden_size=3584, num_attention_heads=28, num_key_value_heads=4, intermediate_size=18944,
               num_hidden_layers=28, tie_word_embeddings=False),
}
MODES = {  # token_logprobs' chunk (0: the whole (B, N, V) logits) and the model's grad_ckpt
    "whole logits": dict(chunk=0, grad_ckpt=False),
    "chunked": dict(chunk=None, grad_ckpt=False),
    "chunked + grad_ckpt": dict(chunk=None, grad_ckpt=True),
}
# (L, B, P, N): four points for the fits, each with at least one whole chunk of logits (441
# positions: below that a chunk grows with the tokens, which the fits do not describe)
FIT = [(1, 1, 32, 448), (1, 2, 32, 448), (2, 1, 32, 448), (2, 2, 32, 448)]
# with grad_ckpt: long prompts and few response tokens, so that a block's backward sets the peak
CHECK = (1, 8, 2048, 16)
README = dict(rows=128, mini_batches=2, P=256, N=512)  # 16 prompts x 8; P: a GSM8K prompt, rounded up
CUDA_CONTEXT = 2**30  # the CUDA context and the caching allocator's slack, not in the CPU's numbers
GIB, MIB = 2**30, 2**20


def resident(field="VmRSS"):
    """This process's resident memory in bytes: now (VmRSS), or its peak (VmHWM) since the last
    reset_peak. (getrusage's ru_maxrss is the peak of the whole life of the process.)"""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))


def reset_peak():
    """Lower the kernel's record of this process's peak resident memory to the current (Linux)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_of(fn):
    """fn's result, and the peak resident memory while it ran above the memory when it began."""
    start = resident()
    reset_peak()
    out = fn()
    return out, resident("VmHWM") - start


def measure_pass(spec):
    """In this (fresh) process: load the policy (float32) and the reference (bf16) from spec["dir"],
    make the gradients and AdamW's state exist (the floor), then run the phases of one RL update on
    B random rows of P prompt and N response tokens, all in the mask; print their memory in bytes
    (the floor above the process's start, the rest above the floor) as one line of JSON."""
    torch.manual_seed(0)
    base = resident()
    policy = Transformer.from_pretrained(spec["dir"], torch.float32)
    ref = Transformer.from_pretrained(spec["dir"], torch.bfloat16).requires_grad_(False)
    policy.grad_ckpt = spec["grad_ckpt"]
    logz = LogZHead(policy.config.n_embd)
    params = list(policy.parameters()) + list(logz.parameters())
    # foreach: cuda's default, whose step holds a float32 temporary of every parameter at once (the
    # CPU's default steps tensor by tensor)
    opt = torch.optim.AdamW(params, lr=1e-6, weight_decay=0.1, foreach=True)
    for p in params:  # gradients and optimizer state live from the first update on
        p.grad = torch.zeros_like(p)
    opt.step()
    floor = resident()
    B, P, N, V = spec["B"], spec["P"], spec["N"], policy.config.vocab_size
    r = Rollout(torch.randint(V, (B, P)), torch.ones(B, P, dtype=torch.bool), torch.randint(V, (B, N)),
                torch.ones(B, N, dtype=torch.bool), torch.zeros(B, N))
    amp = lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    kw = dict(chunk=spec["chunk"])

    def no_grad_passes():  # pi_old and pi_ref
        with torch.no_grad(), amp():
            return token_logprobs(policy, r, **kw)[0], token_logprobs(ref, r, **kw)[0]

    def forward():  # pi_theta, log Z and the loss under autocast, backward outside it, as train.py
        with amp():
            out = token_logprobs(policy, r, **kw)
            logp, hidden = out.logp, out.hidden
            return flowrl_loss(logp, logp_ref, logp_old, r.response_mask, torch.randn(B),
                               logz(hidden, r.prompt_mask))[0]

    def step():
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    t0 = time.time()
    (logp_old, logp_ref), no_grad = peak_of(no_grad_passes)
    loss, forward_peak = peak_of(forward)
    kept = resident() - floor
    backward_peak = peak_of(loss.backward)[1]
    print(json.dumps(dict(floor=floor - base, no_grad=no_grad, kept=kept, forward=forward_peak - kept,
                          backward=backward_peak, grad=max(forward_peak, kept + backward_peak),
                          step=peak_of(step)[1], params=sum(p.numel() for p in policy.parameters()),
                          seconds=time.time() - t0)))


def measure(spec):
    """measure_pass in a fresh process, so that no configuration inherits another's memory. glibc
    is told to map every block of 64 KiB or more on its own, so a freed tensor leaves the resident
    set at once and the resident memory follows the live tensors."""
    env = dict(os.environ, OMP_NUM_THREADS="2", MALLOC_MMAP_THRESHOLD_=str(64 * 1024))
    out = subprocess.run([sys.executable, "-m", "benchmarks.memory", json.dumps(spec)], env=env,
                         capture_output=True, text=True, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if out.returncode:
        raise RuntimeError(f"measuring {spec} failed:\n{out.stderr}")
    return json.loads(out.stdout.splitlines()[-1])


def model_config(size, n_layer=None):
    q = QWEN[size]
    return ModelConfig(model_type="qwen2", vocab_size=VOCAB, n_embd=q["hidden_size"],
                       n_layer=n_layer or q["num_hidden_layers"], n_head=q["num_attention_heads"],
                       n_kv_head=q["num_key_value_heads"], intermediate_size=q["intermediate_size"],
                       qkv_bias=True, tie_embeddings=q["tie_word_embeddings"])


def qwen_checkpoint(size, n_layer, path):
    """A random checkpoint of Qwen2.5-<size>'s shape with n_layer layers, made by transformers."""
    import transformers
    torch.manual_seed(0)
    cfg = transformers.Qwen2Config(**dict(QWEN[size], vocab_size=VOCAB, num_hidden_layers=n_layer))
    transformers.Qwen2ForCausalLM(cfg).save_pretrained(path)


def n_params(size, n_layer=None):
    """Parameters of the model (full depth unless n_layer) and of its log Z head, on the meta device."""
    with torch.device("meta"):
        model, head = Transformer(model_config(size, n_layer)), LogZHead(QWEN[size]["hidden_size"])
    return sum(p.numel() for p in model.parameters()), sum(p.numel() for p in head.parameters())


def lstsq(rows, values):
    """The least-squares coefficients x of rows @ x = values."""
    A, y = torch.tensor(rows, dtype=torch.float64), torch.tensor(values, dtype=torch.float64)
    return torch.linalg.lstsq(A, y[:, None]).solution.squeeze(1).tolist()


def fit(got):
    """Measurements at FIT -> the coefficients of kept, of the forward's and the backward's extra."""
    pts = [(L, B, P, N, got[L, B, P, N]) for L, B, P, N in FIT]
    return dict(kept=lstsq([[1, L, B * N, B * (P + N) * L] for L, B, P, N, _ in pts],
                           [g["kept"] for *_, g in pts]),
                forward=lstsq([[1, L, B * N] for L, B, P, N, _ in pts], [g["forward"] for *_, g in pts]),
                backward=lstsq([[1, B * N] for L, B, P, N, _ in pts], [g["backward"] for *_, g in pts]),
                step=sum(g["step"] / g["params"] for *_, g in pts) / len(pts))


def grad_peak(f, c, grad_ckpt, L, B, P, N):
    """The grad pass's peak above the floor from fits f; c: the per-layer coefficient of kept
    without grad_ckpt, for a block's backward (its activations, recomputed with grad_ckpt, and
    their gradients)."""
    a0, aL, b, c_kept = f["kept"]
    kept = a0 + aL * L + B * (N * b + (P + N) * L * c_kept)
    block = (2 if grad_ckpt else 1) * c * B * (P + N)
    forward = f["forward"][0] + f["forward"][1] * L + f["forward"][2] * B * N
    backward = f["backward"][0] + f["backward"][1] * B * N
    return kept + max(forward, backward, block)


def widths(size):
    """(H, I, kv): the model's width, its MLP's width, and the width of its keys (or values)."""
    q = QWEN[size]
    H = q["hidden_size"]
    return H, q["intermediate_size"], q["num_key_value_heads"] * H // q["num_attention_heads"]


def scaled(f, frm, to, mode):
    """Fits of an unmeasured width (7B) from a measured one. Per-layer constants scale with a
    layer's parameters (their bf16 autocast copies and gradients), the others with the width
    (lm_head's copies and gradients, V x H: conservative, as a chunk's logits do not grow), except
    the whole logits' gradients, V a token whatever the width; c, a layer's activations a token,
    scales like what autograd saves in one of model.py's blocks: its float32 input, 4 H, with
    grad_ckpt; without, 32 H + 8 I + 4 kv (float32 norm inputs and outputs, bf16 matmul inputs and
    outputs)."""
    def saved(size, grad_ckpt):
        H, I, kv = widths(size)
        return 4 * H if grad_ckpt else 32 * H + 8 * I + 4 * kv
    w = widths(to)[0] / widths(frm)[0]
    layer = (n_params(to, 2)[0] - n_params(to, 1)[0]) / (n_params(frm, 2)[0] - n_params(frm, 1)[0])
    a0, aL, b, c = f["kept"]
    grad_ckpt = MODES[mode]["grad_ckpt"]
    vocab = 1 if MODES[mode]["chunk"] == 0 else w  # per response token: logits, or hidden states
    return dict(kept=[a0 * w, aL * layer, b * vocab, c * saved(to, grad_ckpt) / saved(frm, grad_ckpt)],
                forward=[f["forward"][0] * w, f["forward"][1] * layer, f["forward"][2] * vocab],
                backward=[f["backward"][0] * w, f["backward"][1] * vocab],
                step=f["step"])


def extrapolate(size, mode, f, c, m):
    """Bytes on one cuda GPU at the README's settings with m rows a forward/backward pass: the floor,
    each phase's peak above it, and the overall peak. Floor: float32 policy weights, gradients and
    AdamW's two moments (16 bytes a parameter, the log Z head's too), the bf16 reference (2).
    Sampling: all rows at once, with bf16 autocast copies of the weights and a bf16 KV cache."""
    R, (H, _, kv), L = README, widths(size), QWEN[size]["num_hidden_layers"]
    n, n_z = n_params(size)
    T = R["P"] + R["N"]
    grad_ckpt = MODES[mode]["grad_ckpt"]
    # on cuda, masked grouped-query attention gives every query head its own k, v copy (model.py),
    # which attention keeps for backward: 4 (H - kv) more bytes a token in every layer, or with
    # grad_ckpt in the one being recomputed
    copies = m * T * 4 * (H - kv) * (1 if grad_ckpt else L)
    phases = dict(grad=grad_peak(f, c, grad_ckpt, L, m, R["P"], R["N"]) + copies, step=f["step"] * n,
                  sampling=2 * n + 2 * L * R["rows"] * T * kv * 2)
    floor = 18 * n + 16 * n_z
    return floor, phases, floor + max(phases.values()) + CUDA_CONTEXT


def measure_width(size):
    """Measure every mode at FIT (and grad_ckpt at CHECK) on `size`'s width; print the measurements
    and the fits. Returns {mode: fits}."""
    mib = lambda v: f"{v / MIB:.0f}"
    fits = {}
    columns = [("floor", 6), ("no_grad", 7), ("kept", 5), ("forward", 5), ("backward", 5), ("grad", 9),
               ("step", 8)]  # measure_pass's fields, and the width of each one's cell
    with tempfile.TemporaryDirectory() as tmp:
        for L in sorted({pt[0] for pt in FIT + [CHECK]}):
            qwen_checkpoint(size, L, os.path.join(tmp, str(L)))
        print(f"\n{size} width, measured, MiB: the floor above the process's start, the rest above the floor"
              f"\n  {'mode':20s} {'L':>2s} {'B':>2s} {'P':>4s} {'N':>4s} {'floor':>6s} {'no-grad':>7s} "
              f"{'kept':>5s} {'+fwd':>5s} {'+bwd':>5s} {'grad pass':>9s} {'opt step':>8s} {'seconds':>7s}")
        for mode, kw in MODES.items():
            points = FIT + [CHECK] if kw["grad_ckpt"] else FIT
            got = {(L, B, P, N): measure(dict(kw, dir=os.path.join(tmp, str(L)), B=B, P=P, N=N))
                   for L, B, P, N in points}
            for (L, B, P, N), g in got.items():
                cells = " ".join(f"{mib(g[k]):>{w}s}" for k, w in columns)
                print(f"  {mode:20s} {L:2d} {B:2d} {P:4d} {N:4d} {cells} {g['seconds']:7.1f}")
            f = fits[mode] = fit(got)
            (a0, aL, b, c), (f0, f1, f2), (e0, e1) = f["kept"], f["forward"], f["backward"]
            print(f"  fits: kept {mib(a0)} MiB + {mib(aL)} MiB x L + B x (N x {b / 1024:.1f} KiB + T x L x "
                  f"{c / 1024:.1f} KiB);\n        +fwd {mib(f0)} MiB + {mib(f1)} MiB x L + B x N x "
                  f"{f2 / 1024:.1f} KiB; +bwd {mib(e0)} MiB + B x N x {e1 / 1024:.1f} KiB")
            if CHECK in got:
                c_block = fits["chunked"]["kept"][3]
                print(f"  at (L, B, P, N) = {CHECK} the fits predict a grad pass of "
                      f"{mib(grad_peak(f, c_block, True, *CHECK))} MiB, measured {mib(got[CHECK]['grad'])}")
    g, n_z = got[FIT[0]], n_params(size)[1]
    print(f"  floor at L = {FIT[0][0]}: {mib(g['floor'])} MiB measured; 18 bytes x {g['params']:,} "
          f"parameters + 16 x {n_z:,} (log Z head) = {mib(18 * g['params'] + 16 * n_z)} MiB.\n"
          f"  AdamW's step: {f['step']:.2f} bytes a parameter above the floor")
    return fits


def memory(sizes, micro_batches):
    t0 = time.time()
    print(f"torch {torch.__version__}: resident memory of the phases of one RL update, on the CPU under "
          f"bf16 autocast;\npolicy float32, reference bf16, vocabulary {VOCAB:,}, every response N tokens "
          f"long")
    fits = {(size, mode): f for size in sizes for mode, f in measure_width(size).items()}
    widest = max(sizes, key=lambda s: QWEN[s]["hidden_size"])  # widths not measured borrow its fits
    for size in QWEN:
        for mode in MODES:
            if (size, mode) not in fits:
                fits[size, mode] = scaled(fits[widest, mode], widest, size, mode)
    R = README
    print(f"\nExtrapolated to cuda at the full depth: {R['rows']} rows ({R['rows'] // 8} prompts x 8), "
          f"mini_batches {R['mini_batches']} ({R['rows'] // R['mini_batches']} rows an optimizer step), "
          f"prompt {R['P']} + {R['N']} new tokens.\nGiB; peak = floor + the largest phase + "
          f"{CUDA_CONTEXT / GIB:.0f} GiB (CUDA context); widths not measured use scaled fits")
    print(f"  {'size':5s} {'mode':20s} {'rows/pass':>9s} {'floor':>6s} {'grad pass':>9s} {'opt step':>8s} "
          f"{'sampling':>8s} {'peak':>6s}")
    def peak(size, mode, m):  # a block's backward takes c from the fits without grad_ckpt
        return extrapolate(size, mode, fits[size, mode], fits[size, "chunked"]["kept"][3], m)
    for size in QWEN:
        for mode in MODES:
            for m in micro_batches:
                floor, ph, top = peak(size, mode, m)
                print(f"  {size:5s} {mode:20s} {m:9d} {floor / GIB:6.1f} {ph['grad'] / GIB:9.1f} "
                      f"{ph['step'] / GIB:8.1f} {ph['sampling'] / GIB:8.1f} {top / GIB:6.1f}")
    rows = R["rows"] // R["mini_batches"]
    print("\nThe most rows a pass (a divisor of an optimizer step's rows) whose peak fits:")
    for size, card in (("0.5B", 24), ("1.5B", 80), ("7B", 80)):
        divisors = [m for m in range(1, rows + 1) if rows % m == 0]
        best = {mode: max((m for m in divisors if peak(size, mode, m)[2] <= card * GIB), default=None)
                for mode in MODES}
        print(f"  {size} in {card} GiB: " + ", ".join(f"{mode} {m or 'none'}" for mode, m in best.items()))
    print(f"\n{time.time() - t0:.0f} s")


if __name__ == "__main__":  # one configuration, in the fresh process that `measure` starts
    if len(sys.argv) != 2:
        sys.exit("run python -m benchmarks.sampling --memory; this file alone measures one configuration, given as JSON")
    measure_pass(json.loads(sys.argv[1]))
