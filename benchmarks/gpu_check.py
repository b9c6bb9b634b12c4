"""
The cuda path, checked on one GPU in one run of about 5 minutes on an H200 (most of it part 3's
compiling); the test suite runs on a CPU and skips it:

    python -m benchmarks.gpu_check                          # all four parts, 3 last; writes gpu_check.json
    python -m benchmarks.gpu_check --parts memory step      # some of them
    python -m benchmarks.gpu_check --dry_run                # the same code on the CPU, tiny shapes, < 2 min

1) tests   pytest tests/test_cuda.py: bf16 autocast against float32, the bf16 reference, generate
           and the KV cache on cuda, grad_ckpt's gradients, one FlowRL step, train.py's toy run.
2) memory  random checkpoints of Qwen2.5-0.5B's and 1.5B's shape at full depth, made by
           transformers (as benchmarks/memory.py makes them); RL steps at the README's settings
           (128 rows of 255 or 256 prompt + 512 new tokens, 2 mini-batches, --grad_ckpt;
           --micro_batch 16 for 0.5B, 64 for 1.5B); torch.cuda.max_memory_allocated of each phase (the
           sampling, the no-grad passes, the grad passes, the optimizer step) above the floor, beside
           docs/MEMORY.md's estimates; and checks: w == 1 on the first mini-batch, the sampler's
           log-probs against pi_old's, the bf16 reference's against the policy's.
3) speed   tokens/s of generate at batch 64 and 128, 512 new tokens, on the 0.5B checkpoint, as
           train.py samples (float32 weights, bf16 autocast) and compiled (--compile), against
           transformers' generate on the same weights in bf16, eager and with its static cache
           compiled (what transformers compiles by itself on cuda: CUDA graphs).
4) step    one RL step's time at the README's settings on 0.5B, and the shares of sampling, the
           no-grad passes (pi_old, pi_ref) and the update: the second of two (shared with part 2).

Each part is guarded: a part that fails is reported (its traceback in the JSON) and the others
still run. The JSON (--out) is rewritten after every part, so a run cut short keeps what it measured.
--dry_run runs every line of this on the CPU with 2-layer models of width 64 and 96, 8 new tokens
and 16 rows; its numbers mean nothing, it exists so that a bug shows before GPU time is spent.
On the CPU, memory is the resident memory (benchmarks/memory.py's) and tests/test_cuda.py runs
with CUDA_TESTS_DEVICE=cpu.
"""
import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback

import torch

from benchmarks.memory import GIB, MIB, QWEN, README, VOCAB, extrapolate, reset_peak, resident
from benchmarks.sampling import time_all
from flowrl import LogZHead, flowrl_loss, group_normalize
from model import Transformer
from sample import generate, left_pad, token_logprobs
from train import split_rows
from training.launch import Dist, load_reference, seed_of

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KIB = 1024
GROUP = 8  # train.py's --group_size
FULL = dict(  # README: 128 rows (16 prompts x 8), 2 mini-batches, P = 256 prompt and N = 512 new tokens
    README, shapes={size: dict(QWEN[size], vocab_size=VOCAB) for size in ("0.5B", "1.5B")},
    micro={"0.5B": 16, "1.5B": 64},  # rows a pass: the README's command; 1.5B as docs/MEMORY.md's bold entry
    batches=(64, 128))  # sampling speed: a mini-batch's rows, a whole rollout's
DRY = dict(rows=16, mini_batches=2, P=16, N=8, micro={"0.5B": 4, "1.5B": 8}, batches=(4, 8), shapes={
    size: dict(hidden_size=H, num_attention_heads=H // 16, num_key_value_heads=2, intermediate_size=2 * H,
               num_hidden_layers=2, tie_word_embeddings=True, vocab_size=512)
    for size, H in (("0.5B", 64), ("1.5B", 96))})
# docs/MEMORY.md, "Fitted coefficients", the "chunked + grad_ckpt" rows (kept: a0, aL, b, c; +fwd:
# f0, f1, f2; +bwd: e0, e1), AdamW's step at 4.0 bytes a parameter ("What is measured"), and the
# "chunked" row's c, a layer's activations a token, for a block's backward. benchmarks.memory's
# extrapolate turns them into the table's peaks: 11.9 and 46.2 GiB here, 12.0 and 46.3 there (the
# coefficients quoted are rounded)
FITS = {
    "0.5B": (dict(kept=[19 * MIB, 0, 11.7 * KIB, 3.4 * KIB], forward=[751 * MIB, 28 * MIB, 0],
                  backward=[1547 * MIB, 0], step=4.0), 64.5 * KIB),
    "1.5B": (dict(kept=[19 * MIB, 0, 21.0 * KIB, 5.7 * KIB], forward=[937 * MIB, 89 * MIB, 0],
                  backward=[1918 * MIB, 0], step=4.0), 115.9 * KIB),
}


def estimate(size):
    """docs/MEMORY.md's estimate of the README's settings on one GPU, bytes: floor, phases, peak
    (floor + the largest phase + 1 GiB of CUDA context)."""
    f, c_block = FITS[size]
    floor, phases, peak = extrapolate(size, "chunked + grad_ckpt", f, c_block, FULL["micro"][size])
    return dict(floor=floor, **phases, peak=peak)


def checkpoint(s, size):
    """A random checkpoint of size's shape (tiny in a dry run), made by transformers as
    benchmarks/memory.qwen_checkpoint makes one, but on the device (faster); once a run."""
    import transformers
    path = os.path.join(s["tmp"], size)
    if not os.path.isdir(path):
        torch.manual_seed(0)
        with s["device"]:
            hf = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**s["shapes"][size]))
        hf.to("cpu", torch.bfloat16).save_pretrained(path)  # bf16 on disk: half the bytes; every load names its dtype
    return path


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


class Phases:
    """Seconds and peak memory of named phases of an RL step: the seconds add up over a phase's
    calls, the peak is the most memory above `floor` in any of them. cuda: allocated (and the
    caching allocator's reserved) bytes; the CPU: resident bytes, both the same number."""

    def __init__(self, device, floor):
        self.device, self.floor, self.seconds, self.peak, self.reserved = device, floor, {}, {}, {}

    def __call__(self, name, fn):
        cuda = self.device.type == "cuda"
        sync(self.device)
        torch.cuda.reset_peak_memory_stats() if cuda else reset_peak()
        t0 = time.perf_counter()
        out = fn()
        sync(self.device)
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
        peak = torch.cuda.max_memory_allocated() if cuda else resident("VmHWM")
        reserved = torch.cuda.max_memory_reserved() if cuda else peak
        self.peak[name] = max(self.peak.get(name, 0), peak - self.floor)
        self.reserved[name] = max(self.reserved.get(name, 0), reserved)
        return out


def random_prompts(B, P, V, seed):
    """B prompts of random token ids, every other one a token shorter than P: left-padded, as a
    real batch is, so that attention takes its masked kernel everywhere, as the estimates assume
    (without padding, or an EOS, a training pass would take the plain causal kernel)."""
    ids = torch.randint(V, (B, P), generator=torch.Generator().manual_seed(seed)).tolist()
    return [row[i % 2:] for i, row in enumerate(ids)]


def rl_step(s, d, policy, ref, head, opt, micro, phases, seed):
    """One RL step as train.py takes it (sample_step, then rl_update's three phases) on random
    prompts (random_prompts) with random rewards; every response runs N tokens (random weights
    rarely sample an EOS, and none is given), as the estimates assume. Returns what says the
    step was right: w on the first mini-batch (1 exactly), the sampler's log-probs against
    pi_old, and pi_ref (bf16 on cuda) against pi_theta, equal weights, in delta's token means."""
    B, P, N, V = s["rows"], s["P"], s["N"], policy.config.vocab_size
    prompts = random_prompts(B, P, V, seed)
    generators = [torch.Generator(d.device).manual_seed(seed_of(seed, i)) for i in range(B)]

    def sampling():
        with d.amp():
            return generate(policy, prompts, N, generator=generators)
    rollout = phases("sampling", sampling)
    rewards = torch.randint(2, (B,), generator=torch.Generator().manual_seed(seed)).float().to(d.device)
    r_hat = group_normalize(rewards, GROUP)
    minis = split_rows(B, s["mini_batches"], micro)  # minis[j]: mini-batch j's passes (row slices)

    # 1) pi_old and pi_ref, pass by pass
    def no_grad():
        with torch.no_grad(), d.amp():
            return ([[token_logprobs(policy, rollout[rows]).logp for rows in mini] for mini in minis],
                    [[token_logprobs(ref, rollout[rows]).logp for rows in mini] for mini in minis])
    logp_old, logp_ref = phases("no_grad", no_grad)
    w_first = []
    for j, mini in enumerate(minis):
        opt.zero_grad(set_to_none=True)
        n_rows = sum(rows.stop - rows.start for rows in mini)

        # 2) each pass: pi_theta under autocast, log Z and the loss outside it, backward
        def grad():
            for rows, old, ref_logp in zip(mini, logp_old[j], logp_ref[j]):
                mb = rollout[rows]
                with d.amp():
                    out = token_logprobs(policy, mb)
                log_z = head(out.hidden, mb.prompt_mask)
                loss, m = flowrl_loss(logp=out.logp, logp_ref=ref_logp, logp_old=old, mask=mb.response_mask,
                                      r_hat=r_hat[rows], log_z=log_z)
                (loss * (rows.stop - rows.start) / n_rows).backward()  # the mini-batch's mean
                if j == 0:
                    w_first.append(m["w_mean"])
        phases("grad", grad)

        # 3) the optimizer step
        def step():
            torch.nn.utils.clip_grad_norm_(opt.param_groups[0]["params"], 1.0)
            opt.step()
        phases("step", step)
    first, mask = slice(0, minis[0][-1].stop), rollout.response_mask
    old, ref_logp = torch.cat(logp_old[0]), torch.cat(logp_ref[0])
    token_mean = lambda x: (x * mask[first]).sum(1) / mask[first].sum(1)  # (rows,) as delta's lp
    return dict(w_first=sum(w_first) / len(w_first),
                sampler_logp_diff=(rollout.logprobs[first] - old).abs()[mask[first]].max().item(),
                ref_gap=(token_mean(old) - token_mean(ref_logp)).abs().max().item())


def allocated(device):
    return torch.cuda.memory_allocated() if device.type == "cuda" else resident()


def rl_run(s, size):
    """RL steps of `size` at the settings, part 2's memory and part 4's time, once a run: two on
    0.5B, whose second part 4 times (the first pays cuBLAS's and the allocator's warm-up), one on
    1.5B. The floor is as after a first update: weights, gradients, AdamW's state, the reference."""
    if size in s["rl"]:
        return s["rl"][size]
    d = Dist(0, 1, s["device"])
    base = allocated(d.device)  # what earlier parts left
    path = checkpoint(s, size)
    policy = Transformer.from_pretrained(path, torch.float32, d.device)
    policy.grad_ckpt = True
    ref = load_reference(argparse.Namespace(out_dir=s["tmp"]), {"dir": path}, d.device)  # bf16 on cuda
    head = LogZHead(policy.config.n_embd).to(d.device)
    params = list(policy.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, lr=1e-6, weight_decay=0.1)  # train.py's (foreach on cuda)
    for p in params:
        p.grad = torch.zeros_like(p)
    opt.step()
    sync(d.device)
    floor = allocated(d.device)
    steps = []
    for seed in range(2 if size == "0.5B" else 1):
        phases = Phases(d.device, floor)
        checks = rl_step(s, d, policy, ref, head, opt, s["micro"][size], phases, seed)
        steps.append(dict(checks, seconds=phases.seconds, peak=phases.peak, reserved=phases.reserved))
    run = dict(floor=floor - base, n_params=sum(p.numel() for p in policy.parameters()), steps=steps)
    if d.device.type == "cuda":  # what the process holds outside the allocator: context, kernels
        free, total = torch.cuda.mem_get_info()
        run["outside_allocator"] = total - free - torch.cuda.memory_reserved()
    s["rl"][size] = run
    return run


def tests(s):
    env = dict(os.environ, **(dict(CUDA_TESTS_DEVICE="cpu", OMP_NUM_THREADS="1") if s["dry_run"] else {}))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", "tests/test_cuda.py"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    summary = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-2000:]
    print(f"  {summary}")
    if r.returncode or "skipped" in summary:
        raise RuntimeError(f"tests/test_cuda.py: {summary}\n{r.stdout[-6000:]}{r.stderr[-2000:]}")
    return dict(summary=summary)


def memory(s):
    gib = lambda v: f"{v / GIB:5.1f}" if v is not None else "    -"
    print(f"  GiB, estimate / measured; phases above the floor (cuda: max_memory_allocated); peak: the "
          f"floor + the largest phase + CUDA context\n  (estimate: 1 GiB; measured: the allocator's "
          f"peak reservation + what the process holds outside it)"
          + ("\n  dry run: tiny shapes, so the estimates (full size) do not apply" if s["dry_run"] else ""))
    print(f"  {'size':5s} {'rows/pass':>9s} " + " ".join(f"{k:>13s}" for k in
          ("floor", "sampling", "no-grad", "grad pass", "opt step", "peak")))
    out = {}
    for size in s["shapes"]:
        run, est = rl_run(s, size), estimate(size)
        peak = {k: max(st["peak"][k] for st in run["steps"]) for k in run["steps"][0]["peak"]}
        reserved = max(max(st["reserved"].values()) for st in run["steps"])
        device_peak = reserved + run.get("outside_allocator", 0)
        measured = dict(floor=run["floor"], **peak)
        cells = [f"{gib(est.get(k))} /{gib(measured[k])}" for k in ("floor", "sampling", "no_grad", "grad", "step")]
        print(f"  {size:5s} {s['micro'][size]:9d} " + " ".join(f"{c:>13s}" for c in cells + [
              f"{gib(est['peak'])} /{gib(device_peak)}"]))
        checks = {k: ", ".join(f"{st[k]:.3g}" for st in run["steps"]) for k in ("w_first", "sampler_logp_diff", "ref_gap")}
        print(f"        allocated peak {(run['floor'] + max(peak.values())) / GIB:.1f}; by step: w on mini-batch 1 "
              f"{checks['w_first']}; sampler vs pi_old, most {checks['sampler_logp_diff']} nats;\n"
              f"        pi_ref (bf16 on cuda) vs pi_theta in delta's token means, most {checks['ref_gap']} nats")
        out[size] = dict(estimate=est, measured=dict(measured, peak=device_peak), run=run)
    return out


def speed(s):
    import transformers
    d, P, N = Dist(0, 1, s["device"]), s["P"], s["N"]
    path = checkpoint(s, "0.5B")
    ours = Transformer.from_pretrained(path, torch.float32, d.device).eval()  # the policy, as train.py samples it
    fast = torch.compile(ours, dynamic=True)  # train.py --compile
    hf = transformers.AutoModelForCausalLM.from_pretrained(
        path, dtype=torch.bfloat16 if d.device.type == "cuda" else torch.float32).to(d.device).eval()
    static = transformers.CompileConfig()  # transformers' own compile of its static-cache decoding on cuda,
    static._compile_all_devices = True     # here also on the CPU (a dry run)
    V, out, last, errors = ours.config.vocab_size, {}, {}, {}
    print(f"  0.5B, prompts of {P - 1} or {P} tokens + {N} new ones; tok/s = rows x {N} / seconds of the second call;\n"
          f"  ours: float32 weights under bf16 autocast (train.py); transformers: bf16 weights (on cuda)\n"
          f"  {'rows':>5s} {'contender':36s} {'tok/s':>8s} {'first call':>10s}")
    for B in s["batches"]:
        prompts = random_prompts(B, P, V, B)
        ids, mask = left_pad(prompts, 0, d.device)

        def ours_gen(model):
            with d.amp():
                return generate(model, prompts, N, generator=[torch.Generator(d.device).manual_seed(i) for i in range(B)])

        def hf_gen(**kw):
            return hf.generate(input_ids=ids, attention_mask=mask.long(), do_sample=True, temperature=1.0,
                               top_k=0, top_p=1.0, max_new_tokens=N, min_new_tokens=N, pad_token_id=0,
                               eos_token_id=None, **kw)
        runs = {"ours": lambda: ours_gen(ours), "ours, compiled": lambda: ours_gen(fast),
                "transformers": hf_gen,
                "transformers, static cache compiled": lambda: hf_gen(cache_implementation="static", compile_config=static)}

        def keep(name, fn):  # its output kept, timed to the end of the GPU's work; if it fails, reported
            def run():
                if name not in errors:
                    try:
                        last[name] = fn()
                        sync(d.device)
                    except Exception:  # a compiled contender may fail alone: the others are still timed
                        errors[name] = traceback.format_exc()
                        print(f"  {B:5d} {name:36s} FAILED:\n{errors[name]}")
            return run
        t = time_all({name: keep(name, fn) for name, fn in runs.items()}, repeats=1)
        tok_s = {name: B * N / best for name, (first, best) in t.items() if name not in errors}
        for name, v in tok_s.items():
            print(f"  {B:5d} {name:36s} {v:8,.0f} {t[name][0]:8.1f} s")
        ratio = lambda a, b: f"{tok_s[a] / tok_s[b]:.2f}x" if a in tok_s and b in tok_s else "-"
        print(f"        ours / transformers: eager {ratio('ours', 'transformers')}, compiled "
              f"{ratio('ours, compiled', 'transformers, static cache compiled')}; ours compiled / eager "
              f"{ratio('ours, compiled', 'ours')}")
        out[B] = dict(tok_s=tok_s, first_call_s={name: t[name][0] for name in tok_s})
        if "ours" in tok_s and "ours, compiled" in tok_s:
            # the same generators: equal tokens, but where bf16 rounding in other kernels tips a
            # draw (after which the row's tokens differ)
            same = (last["ours"].response_ids == last["ours, compiled"].response_ids).float()  # (B, N)
            out[B].update(compiled_same_tokens=same.mean().item(), compiled_same_first_token=same[:, 0].mean().item())
            print(f"        compiled tokens equal to eager's: {same.mean().item():.0%} "
                  f"({same[:, 0].mean().item():.0%} of first tokens)")
    return dict(batches=out, errors=errors)  # errors: main reports the part as failed


def step(s):
    run = rl_run(s, "0.5B")
    sec = run["steps"][-1]["seconds"]
    total, B, N = sum(sec.values()), s["rows"], s["N"]
    print(f"  0.5B, {B} rows x ({s['P']} + {N}) tokens, {s['mini_batches']} mini-batches, --micro_batch "
          f"{s['micro']['0.5B']} --grad_ckpt; the second of two steps")
    shares = dict(sampling=sec["sampling"], no_grad_passes=sec["no_grad"], update=sec["grad"] + sec["step"])
    for name, v in shares.items():
        print(f"  {name:15s} {v:7.2f} s {v / total:6.1%}")
    print(f"  {'total':15s} {total:7.2f} s, {B * N / total:,.0f} sampled tokens/s over the step")
    return dict(seconds=sec, shares={k: v / total for k, v in shares.items()}, total_s=total)


PARTS = dict(tests=tests, memory=memory, speed=speed, step=step)


def main():
    p = argparse.ArgumentParser(description="The cuda path on one GPU (module docstring)")
    # speed last by default: the longest part, so that a run cut short has measured the others
    p.add_argument("--parts", nargs="+", choices=list(PARTS), default=["tests", "memory", "step", "speed"])
    p.add_argument("--dry_run", action="store_true", help="the same code on the CPU, tiny shapes")
    p.add_argument("--out", default="gpu_check.json")
    args = p.parse_args()
    if not args.dry_run and not torch.cuda.is_available():
        sys.exit("torch sees no GPU here: run with --dry_run to check the code on the CPU")
    device = torch.device("cpu" if args.dry_run else "cuda")
    s = dict(DRY if args.dry_run else FULL, device=device, dry_run=args.dry_run, rl={})
    import transformers
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    if args.dry_run:  # tiny shapes on 2 shared cores: a second thread mostly waits for the first
        torch.set_num_threads(1)
    report = dict(torch=torch.__version__, transformers=transformers.__version__, dry_run=args.dry_run,
                  device=torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                  settings={k: v for k, v in s.items() if k not in ("device", "rl")}, parts={}, failed=[])
    print(f"torch {report['torch']}, transformers {report['transformers']}, {report['device']}"
          + (", dry run" if args.dry_run else ""))
    t_start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        s["tmp"] = tmp
        for name in args.parts:
            print(f"\n{list(PARTS).index(name) + 1}) {name}", flush=True)
            t0 = time.time()
            try:
                report["parts"][name] = dict(PARTS[name](s), wall_s=time.time() - t0)
                if report["parts"][name].get("errors"):  # some of it failed, the rest measured
                    report["failed"].append(name)
            except Exception:  # reported, and the next part runs
                report["parts"][name] = dict(error=traceback.format_exc(), wall_s=time.time() - t0)
                report["failed"].append(name)
                print(f"  FAILED:\n{report['parts'][name]['error']}")
            print(f"  ({time.time() - t0:.0f} s)", flush=True)
            torch.compiler.reset()  # compiled graphs, and the memory pools of transformers' CUDA graphs
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
            with open(args.out, "w") as f:
                json.dump(dict(report, wall_s=time.time() - t_start), f, indent=1, default=str)
    print(f"\n{time.time() - t_start:.0f} s; " + (f"FAILED: {', '.join(report['failed'])}" if report["failed"]
                                                    else "every part ran") + f"; measurements in {args.out}")
    sys.exit(1 if report["failed"] else 0)


if __name__ == "__main__":
    main()
