"""
Sampling throughput: sample.generate against a loop without KV cache and against transformers'
generate on the same weights (when transformers is installed), measured in the same run; and the
same two generates on a torch.compile'd model (when a C++ compiler is found for the CPU kernels).

    python -m benchmarks.sampling
    python -m benchmarks.sampling --quick       # fewer repeats, smaller batch
    python -m benchmarks.sampling --no_compile  # eager contenders only (each compiled one compiles for 15 s to 45 s)

Each contender samples a fixed number of new tokens (no EOS) for the same batch of left-padded
prompts; tokens/s counts B * new_tokens. Each contender's first call (which compiles, for the
compiled ones) is timed apart and left out of the best; then the contenders take turns, `repeats`
rounds, and each keeps its best time: taking turns spreads the machine's slow and fast moments
over all of them.

    python -m benchmarks.sampling --memory      # memory of an RL update on one GPU: benchmarks/memory.py (16 min)
"""
import argparse
import shutil
import tempfile
import time

import torch

from benchmarks.memory import memory
from model import ModelConfig, Transformer
from sample import generate, left_pad, logprobs_of, process
from tasks.sums import TOY_MODEL

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


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no_compile", action="store_true")
    parser.add_argument("--memory", action="store_true", help="measure memory instead of speed")
    parser.add_argument("--sizes", nargs="+", default=["0.5B", "1.5B"], choices=["0.5B", "1.5B"],
                        help="widths to measure with --memory (7B is extrapolated from the widest)")
    parser.add_argument("--micro_batch", type=int, nargs="+", default=[64, 16, 8],
                        help="rows per forward/backward pass to extrapolate --memory to")
    args = parser.parse_args()
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
