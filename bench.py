"""
Sampling throughput: sample.generate against a loop without KV cache and against transformers'
generate on the same weights (when transformers is installed), measured in the same run; and the
same two generates on a torch.compile'd model (when a C++ compiler is found for the CPU kernels).

    python bench.py
    python bench.py --quick       # fewer repeats, smaller batch
    python bench.py --no_compile  # eager contenders only (each compiled one compiles for 15 s to 45 s)

Each contender samples a fixed number of new tokens (no EOS) for the same batch of left-padded
prompts; tokens/s counts B * new_tokens. Each contender's first call (which compiles, for the
compiled ones) is timed apart and left out of the best; then the contenders take turns, `repeats`
rounds, and each keeps its best time: taking turns spreads the machine's slow and fast moments
over all of them.

    python bench.py --memory      # peak memory of an RL update pass, fitted and extrapolated (~10 min)

The memory part is below `measure_pass`; README, "Running on a real checkpoint", has its table.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import torch

from flowrl import LogZHead, flowrl_loss
from model import ModelConfig, Transformer
from sample import Rollout, generate, left_pad, logprobs_of, process, token_logprobs
from task import TOY_MODEL

MODELS = {  # toy: the size train.py trains; 0.1b: vocab 32,000, width 512, 8 layers
    "toy": ModelConfig(vocab_size=64, **dict(TOY_MODEL, max_seq_len=512)),
    "0.1b": ModelConfig(vocab_size=32000, n_embd=512, n_layer=8, n_head=8, n_kv_head=4,
                        intermediate_size=1536, max_seq_len=512, tie_embeddings=False),
}


@torch.no_grad()
def generate_no_cache(model, prompts, max_new_tokens, pad_id=0, generator=None):
    """The baseline: every step reruns the whole sequence through the model."""
    ids, mask = left_pad(prompts, pad_id, model.lm_head.weight.device)
    for _ in range(max_new_tokens):
        logits = process(model(ids, mask=mask, logits_from=-1)[:, -1])
        token = torch.multinomial(logits.softmax(-1), 1, generator=generator)  # (B, 1)
        logprobs_of(logits, token.squeeze(-1))  # the same per-step work as generate
        ids, mask = torch.cat([ids, token], 1), torch.cat([mask, torch.ones_like(token, dtype=torch.bool)], 1)
    return ids


def hf_generate(hf, prompts, max_new_tokens, pad_id=0, **kwargs):
    ids, mask = left_pad(prompts, pad_id, "cpu")
    return hf.generate(input_ids=ids, attention_mask=mask.long(), do_sample=True, temperature=1.0,
                       top_k=0, top_p=1.0, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
                       pad_token_id=pad_id, eos_token_id=None, **kwargs)


def can_compile():
    """torch.compile's CPU kernels are C++, built on first call by the system's compiler."""
    return any(shutil.which(c) for c in ("g++", "clang++", "c++"))


def time_all(runs, repeats):
    """runs: name -> function. Returns name -> (first call seconds, best of `repeats` seconds)."""
    first = {}
    for name, fn in runs.items():
        t0 = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - t0
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - t0)
    return {name: (first[name], best[name]) for name in runs}


# ---- memory of one RL update pass: python bench.py --memory ---------------------------------------
#
# On the CPU, on random checkpoints of Qwen2.5's vocabulary and width made by transformers, with few
# layers: the peak resident memory of each phase of an RL update over B rows x N response tokens,
# each configuration in a fresh process. Under bf16 autocast, as train.py runs on cuda, so that the
# activations have cuda's dtypes; the policy is float32, the reference bf16 (2 bytes a parameter).
# The peaks are fitted, per width and mode, by
#     grad-pass peak above the floor = a0 + aL * L + B * (N * b + T * L * c),   T = P + N
# (a0: per pass, aL: per layer, b: per response token, c: per sequence token and layer) and
# extrapolated to the full depth and to the README's settings.

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
P = 32  # prompt tokens in the measured passes
# (L, B, N): four points for the four coefficients, each with at least one whole chunk of logits
# (441 positions: below that a chunk grows with the tokens, which the fit does not describe)
FIT = [(1, 1, 448), (1, 2, 448), (2, 1, 448), (2, 2, 448)]
CHECK = (2, 3, 160)  # a fifth point, predicted by the fit (other B, N and T), measured in one mode
README = dict(rows=128, mini_batches=2, P=256, N=512)  # 16 prompts x 8; P: a GSM8K prompt, rounded up
CUDA_CONTEXT = 2**30  # the CUDA context and the caching allocator's slack, not in the CPU's numbers
GIB = 2**30


def resident(field="VmRSS"):
    """This process's resident memory in bytes: now (VmRSS), or its peak (VmHWM) since the last
    reset_peak. getrusage's ru_maxrss would be the peak of the whole life of the process."""
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
    spec["B"] random rows of P prompt and spec["N"] response tokens, all in the mask; print the
    memory of each, in bytes, as one line of JSON."""
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
    floor = resident() - base
    B, N, V = spec["B"], spec["N"], policy.config.vocab_size
    r = Rollout(torch.randint(V, (B, P)), torch.ones(B, P, dtype=torch.bool), torch.randint(V, (B, N)),
                torch.ones(B, N, dtype=torch.bool), torch.zeros(B, N))
    amp = lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    kw = dict(chunk=spec["chunk"])

    def no_grad_passes():  # pi_old and pi_ref
        with torch.no_grad(), amp():
            return token_logprobs(policy, r, **kw)[0], token_logprobs(ref, r, **kw)[0]

    def grad_pass():  # pi_theta, log Z and the loss under autocast, backward outside, as train.py
        with amp():
            logp, hidden = token_logprobs(policy, r, **kw)
            loss, _ = flowrl_loss(logp, logp_ref, logp_old, r.response_mask, torch.randn(B),
                                  logz(hidden, r.prompt_mask))
        loss.backward()

    def step():
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    t0 = time.time()
    (logp_old, logp_ref), no_grad = peak_of(no_grad_passes)
    grad = peak_of(grad_pass)[1]
    print(json.dumps(dict(floor=floor, no_grad=no_grad, grad=grad, step=peak_of(step)[1],
                          params=sum(p.numel() for p in policy.parameters()), seconds=time.time() - t0)))


def measure(spec):
    """measure_pass in a fresh process, so that no configuration inherits another's memory. glibc
    is told to map every block of 64 KiB or more on its own, so a freed tensor leaves the resident
    set at once and the resident memory follows the live tensors."""
    env = dict(os.environ, OMP_NUM_THREADS="2", MALLOC_MMAP_THRESHOLD_=str(64 * 1024))
    out = subprocess.run([sys.executable, __file__, "--measure_pass", json.dumps(spec)], env=env,
                         capture_output=True, text=True)
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


def n_params(size):
    """Parameters of the full-depth model and of its log Z head, counted on the meta device."""
    with torch.device("meta"):
        model, head = Transformer(model_config(size)), LogZHead(QWEN[size]["hidden_size"])
    return sum(p.numel() for p in model.parameters()), sum(p.numel() for p in head.parameters())


def fit(points):
    """points: [(L, B, N, bytes)] -> (a0, aL, b, c) of a0 + aL L + B (N b + (P + N) L c), least squares."""
    A = torch.tensor([[1, L, B * N, B * (P + N) * L] for L, B, N, _ in points], dtype=torch.float64)
    y = torch.tensor([[v] for *_, v in points], dtype=torch.float64)
    return torch.linalg.lstsq(A, y).solution.squeeze(1).tolist()


def predict(coef, L, B, N, T=None):
    a0, aL, b, c = coef
    return a0 + aL * L + B * (N * b + (T or P + N) * L * c)


def widths(size):
    """(H, I, kv): the model's width, its MLP's width, and the width of its keys (or values)."""
    q = QWEN[size]
    H = q["hidden_size"]
    return H, q["intermediate_size"], q["num_key_value_heads"] * H // q["num_attention_heads"]


def layer_params(size):
    with torch.device("meta"):
        return sum(p.numel() for p in Transformer(model_config(size, 1)).model.layers.parameters())


def scaled(coef, frm, to, mode):
    """Coefficients of an unmeasured width (7B) from a measured one. aL scales with a layer's
    parameters (mostly their bf16 autocast copies); a0 with the width (lm_head's copies and
    gradients, V x H; conservative, as the chunk's logits do not grow); b with the width, except
    with whole logits, where it is a few float32 copies of V logits a token whatever the width; c
    with the bytes a layer keeps for backward a token: with grad_ckpt its float32 input, 4 H;
    without, 32 H + 8 I + 4 kv (float32 norm inputs and outputs, bf16 matmul inputs and outputs:
    what autograd saves in one of model.py's blocks under autocast)."""
    def kept(size):
        H, I, kv = widths(size)
        return 4 * H if MODES[mode]["grad_ckpt"] else 32 * H + 8 * I + 4 * kv
    a0, aL, b, c = coef
    width = widths(to)[0] / widths(frm)[0]
    b_width = 1 if MODES[mode]["chunk"] == 0 else width
    return a0 * width, aL * layer_params(to) / layer_params(frm), b * b_width, c * kept(to) / kept(frm)


def extrapolate(size, mode, coef, m):
    """Peak bytes on one cuda GPU at the README's settings, m rows per forward/backward pass: the
    floor plus the largest phase. Floor: float32 policy weights, gradients and AdamW's two moments
    (16 bytes a parameter, log Z head too), bf16 reference (2). Sampling: all rows at once, the
    autocast cache of the weights in bf16 (2 bytes a parameter) and the bf16 KV cache."""
    R, (H, _, kv), L = README, widths(size), QWEN[size]["num_hidden_layers"]
    n, n_z = n_params(size)
    T = R["P"] + R["N"]
    floor = 18 * n + 16 * n_z
    # on cuda, masked grouped-query attention gives every query head its own k, v copy (model.py),
    # which attention keeps for backward: 4 (H - kv) more bytes a token, in every layer without
    # grad_ckpt, in the one being recomputed with it
    copies = m * T * 4 * (H - kv) * (1 if MODES[mode]["grad_ckpt"] else L)
    phases = dict(grad=predict(coef["grad"], L, m, R["N"], T) + copies,
                  no_grad=predict(coef["no_grad"], L, m, R["N"], T),
                  step=coef["step"] * n,
                  sampling=2 * n + 2 * L * R["rows"] * T * kv * 2)
    return floor, phases, floor + max(phases.values()) + CUDA_CONTEXT


def measure_width(size):
    """Measure every mode at FIT (and CHECK) on `size`'s width; print the peaks and the fits.
    Returns {mode: {"grad": coefficients, "no_grad": coefficients, "step": bytes a parameter}}."""
    mib = lambda v: f"{v / 2**20:.0f}"
    coefs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for L in sorted({pt[0] for pt in FIT + [CHECK]}):
            qwen_checkpoint(size, L, os.path.join(tmp, str(L)))
        print(f"\n{size} width, measured: MiB above the floor\n  {'mode':20s} {'L':>2s} {'B':>2s} {'N':>4s} "
              f"{'floor':>6s} {'no-grad':>8s} {'grad pass':>10s} {'opt step':>9s} {'seconds':>8s}")
        for mode, kw in MODES.items():
            points = FIT + [CHECK] if kw["grad_ckpt"] else FIT
            got = {(L, B, N): measure(dict(kw, dir=os.path.join(tmp, str(L)), B=B, N=N))
                   for L, B, N in points}
            for (L, B, N), g in got.items():
                print(f"  {mode:20s} {L:2d} {B:2d} {N:4d} {mib(g['floor']):>6s} {mib(g['no_grad']):>8s} "
                      f"{mib(g['grad']):>10s} {mib(g['step']):>9s} {g['seconds']:8.1f}")
            coef = {phase: fit([(*pt, got[pt][phase]) for pt in FIT]) for phase in ("grad", "no_grad")}
            coef["step"] = sum(g["step"] / g["params"] for g in got.values()) / len(got)
            coefs[mode] = coef
            a0, aL, b, c = coef["grad"]
            print(f"  fit of the grad pass: a0 {mib(a0)} MiB + aL {mib(aL)} MiB x L "
                  f"+ B x (N x b {b / 1024:.1f} KiB + T x L x c {c / 1024:.1f} KiB)")
            if CHECK in got:
                print(f"  at (L, B, N) = {CHECK} the fit predicts {mib(predict(coef['grad'], *CHECK))} MiB, "
                      f"measured {mib(got[CHECK]['grad'])}")
    g, n_z = got[FIT[0]], n_params(size)[1]
    print(f"  floor at L = {FIT[0][0]}: {mib(g['floor'])} MiB measured; 18 bytes x {g['params']:,} "
          f"parameters + 16 x {n_z:,} (log Z head) = {mib(18 * g['params'] + 16 * n_z)} MiB.\n"
          f"  AdamW's step: {coef['step']:.2f} bytes a parameter above the floor")
    return coefs


def memory(sizes, micro_batches):
    t0 = time.time()
    print(f"torch {torch.__version__}: peak resident memory of each phase of one RL update, on the CPU under "
          f"bf16 autocast;\npolicy float32, reference bf16, vocabulary {VOCAB:,}, prompts {P} tokens, every "
          f"response N tokens long")
    coefs = {(size, mode): c for size in sizes for mode, c in measure_width(size).items()}
    widest = max(sizes, key=lambda s: QWEN[s]["hidden_size"])  # widths not measured borrow its coefficients
    for size in QWEN:
        for mode in MODES:
            if (size, mode) not in coefs:
                c = coefs[widest, mode]
                coefs[size, mode] = dict(grad=scaled(c["grad"], widest, size, mode),
                                         no_grad=scaled(c["no_grad"], widest, size, mode), step=c["step"])
    R = README
    print(f"\nExtrapolated to cuda at the full depth: {R['rows']} rows ({R['rows'] // 8} prompts x 8), "
          f"mini_batches {R['mini_batches']} ({R['rows'] // R['mini_batches']} rows an optimizer step), "
          f"prompt {R['P']} + {R['N']} new tokens.\nGiB; peak = floor + the largest phase + "
          f"{CUDA_CONTEXT / GIB:.0f} GiB (CUDA context); widths not measured use scaled coefficients")
    print(f"  {'size':5s} {'mode':20s} {'rows/pass':>9s} {'floor':>6s} {'grad pass':>9s} {'no-grad':>8s} "
          f"{'opt step':>8s} {'sampling':>8s} {'peak':>6s}")
    for size in QWEN:
        for mode in MODES:
            for m in micro_batches:
                floor, ph, peak = extrapolate(size, mode, coefs[size, mode], m)
                print(f"  {size:5s} {mode:20s} {m:9d} {floor / GIB:6.1f} {ph['grad'] / GIB:9.1f} "
                      f"{ph['no_grad'] / GIB:8.1f} {ph['step'] / GIB:8.1f} {ph['sampling'] / GIB:8.1f} "
                      f"{peak / GIB:6.1f}")
    rows = R["rows"] // R["mini_batches"]
    print("\nThe most rows a pass (a divisor of the mini-batch's) whose peak fits:")
    for size, card in (("0.5B", 24), ("1.5B", 80), ("7B", 80)):
        best = {mode: max((m for m in range(1, rows + 1) if rows % m == 0
                           and extrapolate(size, mode, coefs[size, mode], m)[2] <= card * GIB), default=None)
                for mode in MODES}
        print(f"  {size} in {card} GiB: " + ", ".join(f"{mode} {m or 'none'}" for mode, m in best.items()))
    print(f"\n{time.time() - t0:.0f} s")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no_compile", action="store_true")
    parser.add_argument("--memory", action="store_true", help="measure memory instead of speed")
    parser.add_argument("--sizes", nargs="+", default=["0.5B", "1.5B"], choices=["0.5B", "1.5B"],
                        help="widths to measure with --memory (7B is extrapolated from the widest)")
    parser.add_argument("--micro_batch", type=int, nargs="+", default=[64, 16, 8],
                        help="rows per forward/backward pass to extrapolate --memory to")
    parser.add_argument("--measure_pass", help=argparse.SUPPRESS)  # one configuration, in its own process
    args = parser.parse_args()
    if args.measure_pass:
        return measure_pass(json.loads(args.measure_pass))
    if args.memory:
        return memory(args.sizes, args.micro_batch)
    try:
        import transformers
        transformers.logging.set_verbosity_error()
    except ImportError:
        transformers = None
    compiled = not args.no_compile and can_compile()
    repeats, B = (1, 4) if args.quick else (3, 8)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {B}, best of {repeats}"
          + ("" if compiled else ", no compiled contenders"))
    print("transformers is not installed: its generate is not measured" if transformers is None
          else f"transformers {transformers.__version__}")
    for name, n_new in [("toy", 256), ("0.1b", 64)]:
        torch.manual_seed(0)
        model = Transformer(MODELS[name]).eval()
        g = torch.Generator().manual_seed(0)
        prompts = [torch.randint(1, MODELS[name].vocab_size, (8 + 3 * i,), generator=g).tolist()
                   for i in range(B)]
        ours = {"generate": lambda: generate(model, prompts, n_new, generator=g)}
        if compiled:
            fast = torch.compile(model, dynamic=True)
            ours["generate, compiled"] = lambda: generate(fast, prompts, n_new, generator=g)
        rivals = {"no KV cache": lambda: generate_no_cache(model, prompts, n_new, generator=g)}
        if transformers is not None:
            with tempfile.TemporaryDirectory() as d:
                model.save_pretrained(d)
                hf = transformers.AutoModelForCausalLM.from_pretrained(d).eval()
                hf_fast = transformers.AutoModelForCausalLM.from_pretrained(d).eval() if compiled else None
            rivals["transformers"] = lambda: hf_generate(hf, prompts, n_new)
            if compiled:  # transformers compiles its forward with a static (preallocated) cache
                hf_fast.forward = torch.compile(hf_fast.forward, dynamic=True)
                rivals["transformers, compiled"] = lambda: hf_generate(hf_fast, prompts, n_new,
                                                                      cache_implementation="static")
        t = time_all(ours | rivals, repeats)
        n_params = sum(p.numel() for p in model.parameters()) / 1e6
        print(f"\n{name} ({n_params:.1f}M params), {n_new} new tokens: tok/s, first call, and how many "
              f"times faster each of ours is")
        print(f"  {'':24s} {'tok/s':>8s} {'first call':>11s}" + "".join(f" {k:>20s}" for k in ours))
        for k, (first, best) in t.items():
            ratios = "".join(f" {best / t[o][1]:19.2f}x" for o in ours) if k in rivals else ""
            print(f"  {k:24s} {B * n_new / best:8,.0f} {first:10.1f}s{ratios}")


if __name__ == "__main__":
    main()
