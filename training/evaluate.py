"""
Evaluation during training: k samples per held-out prompt at temperature 1.0 and one greedy
completion, scored by the task's reward, and on the sums task the exact path metrics
(tasks/paths.py). Rank 0 alone evaluates and writes the row to metrics.jsonl.
"""
import torch

from reward import rewards_of
from sample import generate
from tasks.paths import path_logprobs, path_metrics
from tasks.sums import ToyTask
from training import checkpoint


def toy_paths(model, codec, task, device):
    """log pi(y|x) of every correct derivation of each held-out toy prompt (tasks/paths.py); None for --data."""
    if isinstance(task, ToyTask):
        return path_logprobs(model, codec.tok, task.eval_set, codec.encode, codec.eos_id, codec.pad_id, device)


def sample_texts(d, args, sampler, codec, prompts, **sampling):
    """Completions of prompts (token-id lists) as text, generated --eval_batch rows at a time, so
    that a large evaluation never holds a KV cache for all its rows at once."""
    rows, texts = args.eval_batch or len(prompts), []
    for i in range(0, len(prompts), rows):
        with d.amp():
            r = generate(sampler, prompts[i:i + rows], args.max_new_tokens, eos_id=codec.eos_id, pad_id=codec.pad_id,
                         **sampling)
        texts += [codec.decode(r, j) for j in range(len(r.response_ids))]
    return texts


def evaluate(d, args, model, sampler, codec, task, stage, step, paths_ref=None):
    """k samples at temperature 1.0 per held-out prompt, and one greedy completion, drawn from
    sampler (the model, or its compiled copy); on the toy task also the model's exact path
    metrics (tasks/paths.py) against paths_ref, pi_ref's path log-probs (None: the model is pi_ref).
    Rank 0 alone; the others wait for it at the next step's all-reduce."""
    if d.rank > 0:
        return
    k, problems = args.eval_samples, task.eval_set
    g = torch.Generator(d.device).manual_seed(10_000 + step)  # apart from the seeds of the training rollouts
    prompts = [codec.encode(q) for q, _ in problems]
    texts = sample_texts(d, args, sampler, codec, [p for p in prompts for _ in range(k)], generator=g)
    greedy = sample_texts(d, args, sampler, codec, prompts, temperature=0)
    correct = [r == 1.0 for r in rewards_of(task.reward, texts, [problems[i // k][1] for i in range(len(texts))])]
    per_prompt = [range(j * k, (j + 1) * k) for j in range(len(problems))]
    record = dict(
        phase="eval", stage=stage, step=step, k=k,
        accuracy=sum(correct) / len(correct),
        pass_at_k=sum(any(correct[i] for i in rows) for rows in per_prompt) / len(problems),
        distinct_correct=sum(len({texts[i] for i in rows if correct[i]}) for rows in per_prompt) / len(problems),
        greedy_accuracy=sum(r == 1.0 for r in rewards_of(task.reward, greedy, [a for _, a in problems])) / len(problems))
    logp = toy_paths(model, codec, task, d.device)
    if logp is not None:
        record.update(path_metrics(logp, logp if paths_ref is None else paths_ref))
    checkpoint.append_metrics(args.out_dir, record)
    d.info(f"eval {stage} step {step}: accuracy {record['accuracy']:.3f}  pass@{k} {record['pass_at_k']:.3f}  "
           f"distinct correct {record['distinct_correct']:.2f}  greedy {record['greedy_accuracy']:.3f}")
