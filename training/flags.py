"""
train.py's flags: `parse_args` (the flags, and which ones the command line gave), `resume_args`
(on --resume the run's saved flags rule: a given flag that differs from the saved one is an
error, since the run would silently become another run, except those that may change,
RESUMABLE, which are applied) and `check_flags` (flags that would fail later, or silently train
on nothing, refused in one line before anything is loaded or written).
"""
import argparse
import math
import os

import torch

from flowrl import LOG_Z_ESTIMATORS, LOGP_NORMS, REWARD_NORMS, WEIGHT_MODES
from tasks import countdown_toy as toy_countdown
from tasks import countdown
from tasks.countdown import MAX_NUMS
from training import checkpoint

TASKS = ("sums", "math", "countdown")
COUNTDOWN_FORMATS = ("derivation", "answer")
RESUMABLE = ("sft_steps", "rl_steps", "eval_interval", "save_interval", "keep", "device", "micro_batch", "grad_ckpt", "compile", "eval_batch",
             "tensorboard")
UNSET = object()  # the default of every flag in parse_args' second pass


def count(text, least=1):
    """argparse type: an integer >= least."""
    n = int(text)
    if n < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {n}")
    return n


def real(text):
    """argparse type: a finite number (nan and inf would fail much later, far from the flag)."""
    x = float(text)
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return x


def parse_args(argv):
    """The flags, and the set of those given on the command line (for --resume)."""
    p = argparse.ArgumentParser(description="Train a language model with FlowRL (or GRPO) on math problems "
                                "(train.py's docstring has examples).", formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--algo", choices=["flowrl", "grpo"], default="flowrl")
    p.add_argument("--out_dir", default="out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto: cuda, then mps, then cpu")
    p.add_argument("--sft_steps", type=lambda t: count(t, 0), default=600,
                   help="SFT steps (a model trained from scratch, or --sft_data)")
    p.add_argument("--rl_steps", type=lambda t: count(t, 0), default=100)
    p.add_argument("--group_size", type=count, default=8, help="responses per prompt (official: 8)")
    p.add_argument("--prompts_per_step", type=count, default=16)
    p.add_argument("--mini_batches", type=count, default=2, help="optimizer steps per rollout")
    p.add_argument("--micro_batch", type=lambda t: count(t, 0), default=0,
                   help="response rows per forward/backward pass (0: a whole mini-batch; in SFT, the\n"
                        "whole batch). Smaller passes need less memory and give the same update")
    p.add_argument("--eval_interval", type=count, default=25, help="RL steps between evaluations")
    p.add_argument("--save_interval", type=lambda t: count(t, 0), default=0,
                   help="RL steps between checkpoints (0: at every evaluation); the last step is always saved")
    p.add_argument("--keep", type=count, default=1, help="checkpoints kept: the latest in ckpt, the K - 1 before it\n"
                   "as ckpt_<stage>_<step>")
    p.add_argument("--beta", type=real, default=15.0, help="reward temperature (official: 15)")
    p.add_argument("--lr", type=real, default=1e-4, help="RL learning rate (official 7B: 1e-6)")
    p.add_argument("--init_from", help="an HF-format Llama/Qwen2 directory with tokenizer.json")
    p.add_argument("--task", choices=TASKS, help="sums: the built-in toy (the default without --data); math:\n"
                   "--data's question / answer lines, graded by math_reward (the default with --data);\n"
                   "countdown: numbers and a target, generated or --data's nums / target lines")
    p.add_argument("--data", help="the task's problems: a JSONL file (see --task)")
    p.add_argument("--reward", help="FILE.py:FUNCTION, a reward(completion, gold) -> number of your own in place\n"
                   "of the task's (gold: the answer, or (nums, target) for countdown)")
    p.add_argument("--format_score", type=real, default=0.0,
                   help="countdown: the reward of a well-formed wrong expression (TinyZero: 0.1)")
    p.add_argument("--countdown_format", choices=COUNTDOWN_FORMATS,
                   help="countdown: derivation, the toy for a model trained from scratch (steps such as\n"
                        "'6*4=24,24-1=23 #### 23', tasks/countdown_toy.py; the default without --init_from),\n"
                        "or answer, TinyZero's <answer>expression</answer> (the default with --init_from)")
    p.add_argument("--countdown_numbers", type=lambda t: count(t, 2),
                   help="countdown: numbers a problem (default: 3 for the toy's derivations, 4 for the answer format)")
    p.add_argument("--countdown_max", type=count, help="countdown: the numbers run from 1 to this (default: 9, or 99)")
    p.add_argument("--countdown_target_max", type=count, help="countdown: the largest target (default: 10, or 99)")
    p.add_argument("--prompt_template", help="the prompt, {question} marking where the question goes (default: the\n"
                   "checkpoint's chat template with the question as the user message, else '{question}\\n')")
    p.add_argument("--resume", action="store_true", help="continue from <out_dir>/ckpt")
    p.add_argument("--overwrite", action="store_true", help="delete the run that out_dir holds, then start")
    p.add_argument("--weight", choices=WEIGHT_MODES, default="cap", help="FlowRL importance weight")
    p.add_argument("--logp_norm", choices=LOGP_NORMS, default="mean",
                   help="log-probs in delta: token mean (official) or sequence sum (exact trajectory balance)")
    p.add_argument("--detach_log_z", action="store_true", help="no gradient from log Z into the LM")
    p.add_argument("--log_z", choices=("head",) + LOG_Z_ESTIMATORS, default="head",
                   help="FlowRL's log Z: head, learned by LogZHead (official); mean, the group's least-squares\n"
                        "value (the loss is the group variance of the residual); logmeanexp, the group's\n"
                        "importance-sampling estimate (both with no gradient, flowrl.group_log_z)")
    p.add_argument("--reward_norm", choices=REWARD_NORMS, default="group",
                   help="r_hat: group, the reward's z-score in its group (official); raw, the reward itself")
    p.add_argument("--logz_dropout", type=real, default=0.1,
                   help="dropout in the log Z head (official: 0.1). Masks are drawn per rank, so only\n"
                        "with 0 does a torchrun run repeat a single-process one to float precision")
    p.add_argument("--kl_coef", type=real, default=0.0, help="GRPO's k3 KL coefficient")
    p.add_argument("--max_new_tokens", type=count, default=48)
    p.add_argument("--temperature", type=real, default=1.0,
                   help="rollouts' sampling (official: 1.0); RL's log-probs are taken at the same temperature")
    p.add_argument("--top_p", type=real, default=1.0, help="rollouts: nucleus sampling (1.0: off). Sampling only: RL's\n"
                   "log-probs stay untruncated (train.sampling), and sampler_logp_diff shows the gap")
    p.add_argument("--top_k", type=lambda t: count(t, 0), default=0, help="rollouts: the k likeliest tokens only (0: off;\n"
                   "sampling only, as --top_p)")
    p.add_argument("--grad_ckpt", action="store_true",
                   help="activation checkpointing per block: less memory, one more forward, same gradients")
    p.add_argument("--compile", action="store_true",
                   help="sample with torch.compile(model): pays on a GPU; on a CPU only after ~240k tokens")
    p.add_argument("--eval_prompts", type=count, default=64, help="held-out prompts")
    p.add_argument("--eval_data", help="held-out problems from their own file, as --data's (default: a split of --data)")
    p.add_argument("--eval_temperature", type=real, default=1.0, help="evaluation's sampling (the paper: 0.6)")
    p.add_argument("--eval_top_p", type=real, default=1.0, help="evaluation: nucleus sampling (the paper: 0.95)")
    p.add_argument("--eval_top_k", type=lambda t: count(t, 0), default=0, help="evaluation: top-k sampling (0: off)")
    p.add_argument("--eval_samples", type=count, default=8, help="samples per held-out prompt (k)")
    p.add_argument("--eval_batch", type=lambda t: count(t, 0), default=0,
                   help="rows per generate call in evaluation (0: all eval_prompts x eval_samples at once)")
    p.add_argument("--tensorboard", action="store_true", help="also write the metrics for TensorBoard, to <out_dir>/tensorboard")
    p.add_argument("--sft_lr", type=real, default=2e-3)
    p.add_argument("--sft_batch", type=count, default=64)
    p.add_argument("--sft_data", help="SFT before RL on a JSONL file of prompt / completion lines (the prompt is\n"
                   "the question, built into the model's prompt as the task's are), for any task and model")
    p.add_argument("--sft_slip", type=real, default=0.25, help="fraction of SFT answers off by one (tasks/sums.py)")
    args = p.parse_args(argv)
    p.set_defaults(**{k: UNSET for k in vars(args)})  # a second pass sees only the flags given
    given = {k for k, v in vars(p.parse_args(argv)).items() if v is not UNSET}
    # countdown's format when not given: the toy's derivations for a model trained from scratch,
    # TinyZero's <answer> for a loaded one; saved resolved, so that --resume keeps it
    args.countdown_format = args.countdown_format or ("answer" if args.init_from else "derivation")
    countdown_sizes(args)
    return args, given


def countdown_sizes(args):
    """Countdown's sizes not given take their format's defaults (saved resolved, as the format)."""
    sizes = toy_countdown if args.countdown_format == "derivation" else countdown  # each module's NUMBERS, HI, TARGET_MAX
    for k, default in dict(countdown_numbers=sizes.NUMBERS, countdown_max=sizes.HI,
                           countdown_target_max=sizes.TARGET_MAX).items():
        if getattr(args, k) is None:
            setattr(args, k, default)


def resume_args(args, given, saved):
    """The run's own flags, with those that may change on --resume (RESUMABLE) taken from the
    command line; any other flag given with a different value is an error. --init_from may name
    where the reference model went if it moved (its checksum is checked at load)."""
    may_change = {*RESUMABLE, "init_from"}
    for k in sorted(given - may_change - {"resume", "overwrite", "out_dir"}):
        if getattr(args, k) != saved.get(k):
            raise ValueError(f"--resume: --{k} {getattr(args, k)} differs from the saved run's {saved.get(k)}; "
                             f"start a new run (another --out_dir, or --overwrite) to change it")
    changed = {k: getattr(args, k) for k in given & may_change if getattr(args, k) != saved.get(k)}
    # flags newer than the saved run keep their defaults
    merged = argparse.Namespace(**{**vars(args), **saved, **changed, "resume": True, "overwrite": args.overwrite,
                                   "out_dir": args.out_dir})
    if "countdown_format" not in saved:  # a run saved before the flag: countdown had the answer format only
        merged.countdown_format = "answer" if saved.get("init_from") else "derivation"
    return merged, changed


def check_flags(args, world, given=frozenset()):
    """Flags that would fail later, or silently train on nothing; given (the flags on the command
    line of a new run): those that would have no effect."""
    problems = [
        (args.resume and args.overwrite, "--resume continues the run in out_dir, --overwrite deletes it: give one"),
        (args.group_size < 2, f"--group_size {args.group_size}: every r_hat of a group of one is 0, nothing to learn"),
        (args.beta <= 0, f"--beta {args.beta}: must be positive (it scales the reward in the target)"),
        (args.lr <= 0 or args.sft_lr <= 0, f"--lr {args.lr} / --sft_lr {args.sft_lr}: learning rates must be positive"),
        (max(args.lr, args.sft_lr) > torch.finfo(torch.float32).max,
         f"--lr {args.lr} / --sft_lr {args.sft_lr}: larger than a float32 holds, the optimizer's step overflows"),
        (not 0 <= args.logz_dropout < 1, f"--logz_dropout must be in [0, 1), got {args.logz_dropout}"),
        (args.kl_coef < 0, f"--kl_coef {args.kl_coef}: must be at least 0 (a negative one rewards drifting from pi_ref)"),
        (not 0 <= args.sft_slip <= 1, f"--sft_slip must be in [0, 1] (a fraction of the demonstrations), got {args.sft_slip}"),
        (not 0 <= args.seed < 2**63, f"--seed must be in [0, 2**63), got {args.seed}"),
        (args.prompt_template is not None and "{question}" not in args.prompt_template,
         "--prompt_template must contain {question}"),
        (not toy_task(args) and not args.init_from,
         f"--task {task_name(args)}{' --countdown_format answer' if task_name(args) == 'countdown' else ''} needs "
         f"--init_from, a model whose tokenizer reads its text: a model from scratch learns the toy tasks only "
         f"(sums, countdown in the derivation format)"),
        (toy_task(args) and args.data, f"--task {task_name(args)} makes its own problems: --data is for math or "
         f"countdown --countdown_format answer"),
        (task_name(args) == "math" and not args.data, "--task math needs --data (JSONL of question / answer lines)"),
        (not (args.temperature > 0 and args.eval_temperature >= 0),
         f"--temperature {args.temperature} / --eval_temperature {args.eval_temperature}: rollouts need a temperature "
         f"above 0 (0 is greedy, one response per group), evaluation at least 0"),
        (not (0 < args.top_p <= 1 and 0 < args.eval_top_p <= 1),
         f"--top_p {args.top_p} / --eval_top_p {args.eval_top_p}: must be in (0, 1]"),
        (args.eval_data and not args.data, "--eval_data holds out problems of a --data file: give --data too"),
        (args.log_z != "head" and args.micro_batch % args.group_size,
         f"--log_z {args.log_z} estimates log Z over whole groups: --micro_batch {args.micro_batch} must be a "
         f"multiple of --group_size {args.group_size} (or 0)"),
        (args.log_z != "head" and args.algo != "flowrl", f"--log_z {args.log_z} is FlowRL's: GRPO has no log Z"),
        (args.log_z != "head" and args.detach_log_z, f"--detach_log_z detaches the head's log Z: --log_z {args.log_z} "
         f"has no gradient anyway"),
        (args.reward_norm != "group" and args.algo != "flowrl",
         f"--reward_norm {args.reward_norm} is FlowRL's r_hat: GRPO's advantage is the group z-score"),
        (not 0 <= args.format_score <= 1, f"--format_score must be in [0, 1], got {args.format_score}"),
        (args.countdown_numbers > MAX_NUMS, f"--countdown_numbers {args.countdown_numbers}: at most {MAX_NUMS}"),
        (args.prompts_per_step % (world * args.mini_batches),
         f"--prompts_per_step {args.prompts_per_step} is not divisible by --mini_batches {args.mini_batches}"
         + (f" x {world} processes" if world > 1 else "")),
        (args.sft_batch < world, f"--sft_batch {args.sft_batch} is smaller than the {world} processes sharing it"),
        ("sft_slip" in given and args.sft_data, "--sft_slip makes the toy teachers' slips: --sft_data's completions "
         "are imitated as they are written"),
        ("logz_dropout" in given and args.log_z != "head",
         f"--logz_dropout is the log Z head's dropout: --log_z {args.log_z} has no head"),
    ]
    for bad, message in problems:
        if bad:
            raise ValueError(message)
    if not args.resume and checkpoint.holds_run(args.out_dir):
        if not args.overwrite:
            raise ValueError(f"{args.out_dir} holds a run: continue it with --resume, or delete it with "
                             f"--overwrite, or choose another --out_dir")
        if args.init_from and os.path.abspath(args.init_from).startswith(os.path.abspath(args.out_dir) + os.sep):
            raise ValueError(f"--init_from {args.init_from} lies in the run that --overwrite would delete")


def task_name(args):
    """--task, or what it means when not given (runs saved before it existed too)."""
    return args.task or ("math" if args.data else "sums")


def toy_task(args):
    """The tasks a model trained from scratch learns: their own problems, teacher and tokenizer."""
    return task_name(args) == "sums" or (task_name(args) == "countdown" and args.countdown_format == "derivation")
