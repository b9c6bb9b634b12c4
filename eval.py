"""
Evaluate a model as the FlowRL paper does: n samples per problem (its protocol: 16 at temperature
0.6, top-p 0.95), each scored by the task's reward, reported as Avg@n (the accuracy over all
samples) and the unbiased pass@k for k = 1, 2, 4, ... up to n.

    python eval.py --model out/ckpt                                # the toy task's 64 held-out sums
    python eval.py --model out/sft --problems 500 --out sft.jsonl  # the SFT model on 500 of them
    python eval.py --model out/ckpt --ref out/sft                  # path metrics against pi_ref
    python eval.py --model ~/Qwen2.5-0.5B-Instruct --data math500.jsonl --device cuda \\
        --max_new_tokens 4096 --batch 256 --out qwen.jsonl
    python eval.py --model out/cd/ckpt --task countdown --data countdown_test.jsonl

Every problem of --data is evaluated (math: {"question", "answer"} lines; countdown: {"nums",
"target"} lines); without --data, the first --problems of the held-out set train.py generates and
evaluates on (sums, or countdown), and on these toy tasks also the exact metrics of
tasks/paths.py, over paths (sums) or solutions (countdown), against the model itself or --ref. The flags shared with train.py mean the
same, and the model and prompt come from training/launch.py's load_model and Codec, so prompts
are built as in training (the checkpoint's chat template when --prompt_template is not given).

It writes --out (JSONL, one row per problem: question, answer, prompt as the model saw it,
completions, rewards) and --out.summary.json, both only once everything has run. A sample is
correct when its reward is at least 1 (the tasks' full credit; Countdown's format_score is not).
Sample j of problem i draws from a generator seeded by (--seed, i, j), so a rerun writes the same
files. Where this departs from the paper: it reports pass@k beside Avg@n (the paper: Avg@16
alone), and --max_new_tokens defaults to train.py's 48, the toy task's: give a real model the
room its reasoning needs.
"""
import argparse
import functools
import json
import math
import os
import sys
import time

import torch
from safetensors import SafetensorError

from model import atomic_write, write_text
from reward import load_reward, math_reward, rewards_of
from sample import generate
from tasks.countdown import MAX_NUMS, countdown_reward, question as countdown_question, read_countdown
from tasks.jsonl import read_jsonl
from tasks.paths import path_logprobs, toy_metrics
from training.flags import COUNTDOWN_FORMATS, TASKS, count, countdown_sizes, real, task_name, toy_task
from training.flags import parse_args as train_args
from training.launch import load_model, load_task, prompt_check, seed_of, setup_processes

BAD_INPUT = (ValueError, OSError, SafetensorError)  # reported as one line naming the file or flag


def pass_at_k(n, c, k):
    """The chance that at least one of k samples drawn without replacement from n, c of them
    correct, is correct (Chen et al. 2021, eq. 1), in the product form that never forms a binomial:

        1 - C(n - c, k) / C(n, k) = 1 - prod_{i = n - c + 1}^{n} (1 - k / i)
    """
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:  # every k of the n samples include a correct one
        return 1.0
    return 1.0 - math.prod(1.0 - k / i for i in range(n - c + 1, n + 1))


def parse_args(argv):
    train = train_args([])[0]  # train.py's defaults: a shared flag means the same in both scripts
    p = argparse.ArgumentParser(description="Evaluate a model: n samples per problem, Avg@n and pass@k "
                                "(eval.py's docstring has examples).", formatter_class=argparse.RawTextHelpFormatter)
    p.error = lambda message: sys.exit(f"error: {message}")  # one line, no usage block
    p.add_argument("--model", required=True, help="an HF-format Llama/Qwen2 directory (out_dir/ckpt, out_dir/sft, ...)")
    p.add_argument("--task", choices=TASKS, help="as train.py: sums without --data, math with it")
    p.add_argument("--data", help="the problems: a JSONL file (math: question / answer; countdown: nums / target)")
    p.add_argument("--problems", type=count, help="the first N problems (default: all of --data; for sums "
                   f"the {train.eval_prompts} held-out ones train.py evaluates on)")
    p.add_argument("--n", type=count, default=16, help="samples per problem (paper: 16)")
    p.add_argument("--k", help="pass@k for these k, comma-separated (default: 1, 2, 4, ... up to n, and n)")
    p.add_argument("--temperature", type=real, default=0.6, help="paper: 0.6")
    p.add_argument("--top_p", type=real, default=0.95, help="paper: 0.95")
    p.add_argument("--top_k", type=lambda t: count(t, 0), default=0, help="0: no top-k")
    p.add_argument("--batch", type=count, default=64, help="rows (samples) per generate call")
    p.add_argument("--seed", type=int, default=train.seed)
    p.add_argument("--device", default=train.device, help="auto: cuda, then mps, then cpu")
    p.add_argument("--max_new_tokens", type=count, default=train.max_new_tokens)
    p.add_argument("--prompt_template", default=train.prompt_template, help="as train.py: {question} marks the "
                   "question (default: the checkpoint's chat template, else '{question}\\n')")
    p.add_argument("--reward", help="FILE.py:FUNCTION, a reward(completion, gold) -> number in place of the task's")
    p.add_argument("--ref", help="the toy tasks: the exact metrics' reference model (default: the model itself)")
    p.add_argument("--out", default="eval.jsonl", help="the rows; the summary goes to OUT.summary.json")
    p.add_argument("--format_score", type=real, default=train.format_score, help="countdown, as train.py")
    p.add_argument("--countdown_format", choices=COUNTDOWN_FORMATS, help="countdown, as train.py (default: answer "
                   "with --data, else derivation, the toy's held-out set;\nanswer without --data: the held-out "
                   "set of a run with --init_from)")
    p.add_argument("--countdown_numbers", type=lambda t: count(t, 2), help="countdown without --data, as train.py")
    p.add_argument("--countdown_max", type=count, help="as train.py")
    p.add_argument("--countdown_target_max", type=count, help="as train.py")
    args = p.parse_args(argv)
    args.countdown_format = args.countdown_format or ("answer" if args.data else "derivation")
    countdown_sizes(args)
    # load_model and load_task read train.py's flags: theirs at their defaults, eval.py's on top
    return argparse.Namespace(**{**vars(train), **vars(args)})


def check_flags(args):
    """Flags that would fail later, after minutes of sampling, or far from the flag. Returns the k of pass@k."""
    try:
        powers = {2**i for i in range(args.n.bit_length())}  # 1, 2, 4, ... up to n
        ks = sorted({int(k) for k in args.k.split(",")} if args.k else powers | {args.n})
    except ValueError:
        raise ValueError(f"--k {args.k}: expected integers separated by commas, e.g. 1,4,16") from None
    name = task_name(args)
    problems = [
        (int(os.environ.get("WORLD_SIZE", 1)) > 1, "eval.py runs in one process: start it with python, not torchrun"),
        (not os.path.isdir(args.model),
         f"--model {args.model}: not a directory (expected an HF-format model directory)"),
        (args.ref and not os.path.isdir(args.ref), f"--ref {args.ref}: not a directory (expected an HF-format model)"),
        (args.ref and not toy_task(args), f"--ref {args.ref}: the exact metrics exist only on the toy tasks"),
        (not ks or ks[0] < 1 or ks[-1] > args.n,
         f"--k {args.k}: pass@k needs 1 <= k <= n, and --n {args.n} samples a problem give at most k = {args.n}"),
        (args.temperature < 0, f"--temperature {args.temperature}: must be at least 0 (0: greedy)"),
        (not 0 < args.top_p <= 1, f"--top_p {args.top_p}: must be in (0, 1]"),
        (not 0 <= args.seed < 2**63, f"--seed must be in [0, 2**63), got {args.seed}"),
        (args.prompt_template is not None and "{question}" not in args.prompt_template,
         "--prompt_template must contain {question}"),
        (toy_task(args) and args.data, f"--task {name} makes its own problems: --data is for math or "
         f"countdown --countdown_format answer"),
        (not 0 <= args.format_score <= 1, f"--format_score must be in [0, 1], got {args.format_score}"),
        (args.countdown_numbers > MAX_NUMS, f"--countdown_numbers {args.countdown_numbers}: at most {MAX_NUMS}"),
        (name == "math" and not args.data, "--task math needs --data (JSONL of question / answer lines)"),
        (not os.path.isdir(os.path.dirname(os.path.abspath(args.out))),
         f"--out {args.out}: its directory does not exist"),
    ]
    for bad, message in problems:
        if bad:
            raise ValueError(message)
    return ks


def load_problems(args, codec, max_seq_len):
    """[(question, gold)] and the reward(completion, gold) that scores them; a prompt too long for
    the model is an error naming the problem (for --data, its file and line)."""
    too_long = prompt_check(codec, args.max_new_tokens, max_seq_len)
    if args.data:  # every problem of the file (load_task would hold out a fifth of it)
        if task_name(args) == "math":  # each prompt checked as its line is read, so an error names the line
            problems, reward = read_jsonl(args.data, too_long)[:args.problems], math_reward
        else:
            problems = [(countdown_question(*p), p) for p in read_countdown(args.data)][:args.problems]
            reward = functools.partial(countdown_reward, format_score=args.format_score)
            for i, (question, _) in enumerate(problems):
                if too_long(question):
                    raise ValueError(f"{args.data} problem {i + 1}: {too_long(question)}")
        reward = load_reward(args.reward) if args.reward else reward
    else:  # the held-out set that train.py generates and evaluates on (load_task applies --reward)
        try:
            task = load_task(argparse.Namespace(**{**vars(args), "eval_prompts": args.problems or args.eval_prompts}),
                             codec, max_seq_len)
        except ValueError as e:  # train.py's --eval_prompts is --problems here
            raise ValueError(str(e).replace("--eval_prompts", "--problems")) from None
        problems, reward = task.eval_set, task.reward
        return problems, reward, task if hasattr(task, "derivations") else None  # a toy task lists its solutions
    if not problems:
        raise ValueError(f"{args.data}: holds no problems")
    return problems, reward, None


def sample(d, args, model, codec, problems, reward):
    """n completions of each problem, --batch rows per generate call, with a progress line per
    call; sample j of problem i draws from its own generator, seeded by (seed, i, j), so that
    its tokens do not depend on which rows share its batch. Returns the rows of --out."""
    n, prompts = args.n, [codec.encode(q) for q, _ in problems]
    rows = [(i, j) for i in range(len(problems)) for j in range(n)]  # row i * n + j: sample j of problem i
    texts, tokens, t0 = [], 0, time.time()
    for start in range(0, len(rows), args.batch):
        batch = rows[start:start + args.batch]
        generators = [torch.Generator(d.device).manual_seed(seed_of(args.seed, i, j)) for i, j in batch]
        with d.amp():
            r = generate(model, [prompts[i] for i, _ in batch], args.max_new_tokens, temperature=args.temperature,
                         top_k=args.top_k, top_p=args.top_p, eos_id=codec.eos_id, pad_id=codec.pad_id,
                         generator=generators)
        texts += [codec.decode(r, b) for b in range(len(batch))]
        tokens += int(r.response_mask.sum())
        elapsed = max(time.time() - t0, 1e-6)
        print(f"{(start + len(batch)) // n}/{len(problems)} problems  {elapsed:.0f}s  {tokens / elapsed:.0f} tok/s",
              flush=True)
    rewards = rewards_of(reward, texts, [problems[i][1] for i, _ in rows])
    return [dict(question=q, answer=gold, prompt=codec.tok.decode(prompts[i], skip_special_tokens=False),
                 completions=texts[i * n:(i + 1) * n], rewards=rewards[i * n:(i + 1) * n])
            for i, (q, gold) in enumerate(problems)]


def summarize(args, rows, ks):
    """Avg@n, the mean reward and pass@k over the rows, with the flags that produced them."""
    c = [sum(r >= 1 for r in row["rewards"]) for row in rows]  # correct samples of each problem
    rewards = [r for row in rows for r in row["rewards"]]
    return dict(model=args.model, data=args.data, task=task_name(args), problems=len(rows), n=args.n,
                temperature=args.temperature, top_p=args.top_p, top_k=args.top_k, seed=args.seed,
                max_new_tokens=args.max_new_tokens, prompt_template=args.prompt_template, reward=args.reward,
                accuracy=sum(c) / len(rewards), mean_reward=sum(rewards) / len(rewards),
                **{"pass@k": {str(k): sum(pass_at_k(args.n, ci, k) for ci in c) / len(rows) for k in ks}})


def main(argv=None):
    """eval.py as a function: main(["--model", "out/ckpt"]) returns the summary it writes."""
    try:
        # 1) flags, checked before anything loads
        args = parse_args(argv)
        ks = check_flags(args)
        # 2) device, model (and --ref), problems and reward
        d = setup_processes(args.device)
        model, codec = load_model(args, args.model, d.device)
        problems, reward, toy = load_problems(args, codec, model.config.max_seq_len)
        ref = load_model(args, args.ref, d.device)[0].eval() if args.ref else None
        if ref and ref.config.vocab_size != model.config.vocab_size:
            raise ValueError(f"--ref {args.ref}: a vocabulary of {ref.config.vocab_size} ids, the model's has "
                             f"{model.config.vocab_size}: the path metrics need one tokenizer")
        # 3) n samples per problem, scored
        rows = sample(d, args, model.eval(), codec, problems, reward)
        summary = summarize(args, rows, ks)
        # 4) the toy tasks: the exact metrics (temperature 1, no top-p: the model's own distribution),
        #    over paths (sums) or solutions (countdown), tasks/paths.py
        if toy:
            def paths(m):
                return path_logprobs(m, codec.tok, problems, codec.encode, codec.eos_id, codec.pad_id, d.device,
                                     derivations=toy.derivations)
            logp = paths(model)
            summary.update(toy_metrics(toy, problems, logp, paths(ref) if ref else logp), paths_ref=args.ref or args.model)
        # 5) the files, only now: a failed run leaves none
        atomic_write(args.out, lambda f: write_text(f, "\n".join(json.dumps(row) for row in rows)))
        atomic_write(args.out + ".summary.json", lambda f: write_text(f, json.dumps(summary, indent=1)))
    except BAD_INPUT as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:  # Ctrl-C: one line, and the exit status a shell gives
        print("interrupted: nothing written", file=sys.stderr)
        sys.exit(130)
    print(f"{summary['problems']} problems x {args.n} samples: accuracy (Avg@{args.n}) {summary['accuracy']:.4f}  "
          + "  ".join(f"pass@{k} {v:.4f}" for k, v in summary["pass@k"].items())
          + "".join(f"\n{k} {v:.4f}" for k, v in summary.items()
                    if k.startswith(("paths_", "solutions_", "pass_exact", "distinct_at")) and k != "paths_ref"))
    print(f"wrote {args.out} and {args.out}.summary.json")
    return summary


if __name__ == "__main__":
    main()
