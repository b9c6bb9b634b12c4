"""
Evaluation during training: k samples per held-out prompt (--eval_temperature, --eval_top_p,
--eval_top_k: by default the rollouts' temperature 1.0) and one greedy completion, scored by the
task's reward, and on the sums task the exact path metrics (tasks/paths.py). Rank 0 alone
evaluates; train.py writes the row it returns to metrics.jsonl.
"""
import json
import os
import time

import torch

from reward import rewards_of
from sample import generate
from model import atomic_write, write_text
from tasks.paths import path_logprobs, solution_groups, solution_logprobs, toy_metrics
from training.launch import seed_of


def toy_paths(model, codec, task, device):
    """log pi(y|x) of every correct derivation of each held-out prompt of a toy task (tasks/paths.py);
    None for the others, whose correct completions cannot be listed."""
    if hasattr(task, "derivations"):
        return path_logprobs(model, codec.tok, task.eval_set, codec.encode, codec.eos_id, codec.pad_id, device,
                             derivations=task.derivations)


def exact_metrics(args, codec, task, stage, step, logp, logp_ref):
    """The exact metrics of tasks/paths.py, over paths (sums) or solutions (countdown), and the
    numbers they come from in <out_dir>/exact/<stage>_<step>.json: per held-out problem its
    prompt, every correct derivation with its log-prob, and (countdown) each solution's
    canonical text and probability, so that any other metric can be computed later."""
    rows = []
    for i, problem in enumerate(task.eval_set):
        texts = task.derivations(problem)
        rows.append(dict(question=problem[0], prompt=codec.tok.decode(codec.encode(problem[0]), skip_special_tokens=False),
                         derivations=[[t, lp] for t, lp in zip(texts, logp[i].tolist())]))
    if hasattr(task, "solutions"):  # Countdown: each solution's canonical text and probability too
        names = [task.solutions(p)[0] for p in task.eval_set]
        for row, n, lp in zip(rows, names, solution_logprobs(logp, solution_groups(task, task.eval_set))):
            row["solutions"] = [[s, p] for s, p in zip(n, lp.exp().tolist())]
    os.makedirs(os.path.join(args.out_dir, "exact"), exist_ok=True)
    text = json.dumps(dict(stage=stage, step=step, problems=rows))
    atomic_write(os.path.join(args.out_dir, "exact", f"{stage}_{step}.json"), lambda tmp: write_text(tmp, text))
    return toy_metrics(task, task.eval_set, logp, logp_ref)


def sample_texts(d, args, sampler, codec, prompts, what="", **sampling):
    """Completions of prompts (token-id lists) as text, generated --eval_batch rows at a time, so
    that a large evaluation never holds a KV cache for all its rows at once; with `what`, a
    progress line after each batch when there are several."""
    rows, texts, t0, n_tokens = args.eval_batch or len(prompts), [], time.time(), 0
    for i in range(0, len(prompts), rows):
        with d.amp():
            r = generate(sampler, prompts[i:i + rows], args.max_new_tokens, eos_id=codec.eos_id, pad_id=codec.pad_id,
                         **sampling)
        texts += [codec.decode(r, j) for j in range(len(r.response_ids))]
        n_tokens += int(r.response_mask.sum())
        if what and rows < len(prompts):
            print(f"  {what}: {len(texts)}/{len(prompts)} completions, {time.time() - t0:.0f} s, "
                  f"{n_tokens / (time.time() - t0):.0f} tok/s", flush=True)
    return texts


def evaluate(d, args, model, sampler, codec, task, stage, step, paths_ref=None):
    """k samples per held-out prompt, and one greedy completion, drawn from sampler (the model,
    or its compiled copy); on the toy task also the model's exact path metrics (tasks/paths.py)
    against paths_ref, pi_ref's path log-probs (None: the model is pi_ref). Returns the metrics
    row on rank 0; the other ranks return None and wait for it at the next step's all-reduce."""
    if d.rank > 0:
        return
    k, problems = args.eval_samples, task.eval_set
    # its own stream per run seed and step (runs with other seeds draw other evaluation samples), apart
    # from the seeds of the training rollouts
    g = torch.Generator(d.device).manual_seed(seed_of(args.seed, 10_000 + step))
    prompts = [codec.encode(q) for q, _ in problems]
    d.info(f"eval {stage} step {step}: {k} samples and a greedy completion for each of {len(problems)} held-out prompts")
    texts = sample_texts(d, args, sampler, codec, [p for p in prompts for _ in range(k)], f"eval {stage} step {step}",
                         generator=g, temperature=args.eval_temperature, top_p=args.eval_top_p, top_k=args.eval_top_k)
    greedy = sample_texts(d, args, sampler, codec, prompts, temperature=0)
    correct = [r >= 1.0 for r in rewards_of(task.reward, texts, [problems[i // k][1] for i in range(len(texts))])]
    per_prompt = [range(j * k, (j + 1) * k) for j in range(len(problems))]
    record = dict(
        phase="eval", stage=stage, step=step, k=k, temperature=args.eval_temperature, top_p=args.eval_top_p,
        top_k=args.eval_top_k,
        accuracy=sum(correct) / len(correct),
        pass_at_k=sum(any(correct[i] for i in rows) for rows in per_prompt) / len(problems),
        distinct_correct=sum(len({texts[i] for i in rows if correct[i]}) for rows in per_prompt) / len(problems),
        greedy_accuracy=sum(r >= 1.0 for r in rewards_of(task.reward, greedy, [a for _, a in problems])) / len(problems))
    logp = toy_paths(model, codec, task, d.device)
    if logp is not None:
        record.update(exact_metrics(args, codec, task, stage, step, logp, logp if paths_ref is None else paths_ref))
    d.info(f"eval {stage} step {step}: accuracy {record['accuracy']:.3f}  pass@{k} {record['pass_at_k']:.3f}  "
           f"distinct correct {record['distinct_correct']:.2f}  greedy {record['greedy_accuracy']:.3f}")
    return record
