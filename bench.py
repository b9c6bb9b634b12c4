"""
Sampling throughput: sample.generate against a loop without KV cache and against transformers'
generate on the same weights (when transformers is installed), measured in the same run.

    python bench.py            # or: python sample.py --bench
    python bench.py --quick    # fewer repeats, smaller batch

Each contender samples a fixed number of new tokens (no EOS) for the same batch of left-padded
prompts; tokens/s counts B * new_tokens; the best of `repeats` timed runs after one warm-up.
"""
import argparse
import tempfile
import time

import torch

from model import ModelConfig, Transformer
from sample import generate, left_pad, logprobs_of, process

MODELS = {  # toy: the size train.py trains; 0.1b: vocab 32,000, width 512, 8 layers
    "toy": ModelConfig(vocab_size=64, n_embd=128, n_layer=4, n_head=4, n_kv_head=2,
                       intermediate_size=384, max_seq_len=512),
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


def hf_generate(hf, prompts, max_new_tokens, pad_id=0):
    ids, mask = left_pad(prompts, pad_id, "cpu")
    return hf.generate(input_ids=ids, attention_mask=mask.long(), do_sample=True, temperature=1.0,
                       top_k=0, top_p=1.0, max_new_tokens=max_new_tokens, min_new_tokens=max_new_tokens,
                       pad_token_id=pad_id, eos_token_id=None)


def best_time(fn, repeats):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--bench", action="store_true")  # accepted when run as sample.py --bench
    args = parser.parse_args()
    try:
        import transformers
        transformers.logging.set_verbosity_error()
    except ImportError:
        transformers = None
    repeats, B = (1, 4) if args.quick else (3, 8)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {B}, best of {repeats}")
    #            model,  new tokens, contenders
    for name, n_new, rivals in [("toy", 256, ("no-cache", "transformers")),
                                ("0.1b", 64, ("no-cache", "transformers"))]:
        torch.manual_seed(0)
        model = Transformer(MODELS[name]).eval()
        g = torch.Generator().manual_seed(0)
        prompts = [torch.randint(1, MODELS[name].vocab_size, (8 + 3 * i,), generator=g).tolist()
                   for i in range(B)]
        n_params = sum(p.numel() for p in model.parameters()) / 1e6
        ours = best_time(lambda: generate(model, prompts, n_new, generator=g), repeats)
        print(f"{name} ({n_params:.1f}M params), {n_new} new tokens: "
              f"generate {B * n_new / ours:,.0f} tok/s")
        for rival in rivals:
            if rival == "no-cache":
                t = best_time(lambda: generate_no_cache(model, prompts, n_new, generator=g), repeats)
            elif transformers is None:
                print("  transformers not installed: skipped")
                continue
            else:
                with tempfile.TemporaryDirectory() as d:
                    model.save_pretrained(d)
                    hf = transformers.AutoModelForCausalLM.from_pretrained(d).eval()
                t = best_time(lambda: hf_generate(hf, prompts, n_new), repeats)
            print(f"  {rival:13s} {B * n_new / t:8,.0f} tok/s   generate is {t / ours:.2f}x faster")


if __name__ == "__main__":
    main()
