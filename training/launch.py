"""
What train.py settles before it trains: its flags (checked, and on --resume merged with the run's
own), its processes and device, and the model, tokenizer, task and reference model it loads.
Nothing here writes to out_dir: train.py touches it only once all of this has passed.

Flags: `parse_args` also returns which flags the command line gave, because on --resume the run's
saved flags rule: a given flag that differs from the saved one is an error (the run would
silently become another run), except those that may change (RESUMABLE), which are applied.

Processes: torchrun sets RANK and WORLD_SIZE; a plain `python train.py` is rank 0 of a world of 1.
`Dist` carries what is fixed once the processes are up: rank, world, device, and the few
collective helpers train.py uses.

Loading: `Codec` is the tokenizer with the prompt template (questions to ids, responses to text);
every file problem is an error naming the file (training/checkpoint.py, model.py, tasks/).
"""
import argparse
import contextlib
import datetime
import math
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from training import checkpoint
from training.checkpoint import load_tokenizer
from flowrl import LOGP_NORMS, WEIGHT_MODES
from model import ModelConfig, Transformer
from sample import eos_ids
from reward import load_reward
from tasks.countdown import MAX_NUMS, CountdownTask
from tasks.countdown import question as countdown_question
from tasks.jsonl import FileTask
from tasks.sums import EOS, PAD, TOY_MODEL, ToyTask, train_toy_tokenizer

# may change on --resume: the run's length, and how it runs (the same updates and samples)
TASKS = ("sums", "math", "countdown")
RESUMABLE = ("sft_steps", "rl_steps", "eval_interval", "device", "micro_batch", "grad_ckpt", "compile", "eval_batch")
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
    p.add_argument("--sft_steps", type=lambda t: count(t, 0), default=600, help="SFT steps (toy task only)")
    p.add_argument("--rl_steps", type=lambda t: count(t, 0), default=100)
    p.add_argument("--group_size", type=count, default=8, help="responses per prompt (official: 8)")
    p.add_argument("--prompts_per_step", type=count, default=16)
    p.add_argument("--mini_batches", type=count, default=2, help="optimizer steps per rollout")
    p.add_argument("--micro_batch", type=lambda t: count(t, 0), default=0,
                   help="response rows per forward/backward pass (0: a whole mini-batch). Smaller\n"
                        "passes need less memory and give the same update")
    p.add_argument("--eval_interval", type=count, default=25, help="RL steps between evaluations")
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
    p.add_argument("--countdown_numbers", type=lambda t: count(t, 2), default=4, help="countdown: numbers a problem")
    p.add_argument("--countdown_max", type=count, default=99, help="countdown: the numbers run from 1 to this")
    p.add_argument("--countdown_target_max", type=count, default=99, help="countdown: the largest target")
    p.add_argument("--prompt_template", default="{question}\n")
    p.add_argument("--resume", action="store_true", help="continue from <out_dir>/ckpt")
    p.add_argument("--overwrite", action="store_true", help="delete the run that out_dir holds, then start")
    p.add_argument("--weight", choices=WEIGHT_MODES, default="cap", help="FlowRL importance weight")
    p.add_argument("--logp_norm", choices=LOGP_NORMS, default="mean",
                   help="log-probs in delta: token mean (official) or sequence sum (exact trajectory balance)")
    p.add_argument("--detach_log_z", action="store_true", help="no gradient from log Z into the LM")
    p.add_argument("--logz_dropout", type=real, default=0.1,
                   help="dropout in the log Z head (official: 0.1). Masks are drawn per rank, so only\n"
                        "with 0 does a torchrun run repeat a single-process one to float precision")
    p.add_argument("--kl_coef", type=real, default=0.0, help="GRPO's k3 KL coefficient")
    p.add_argument("--max_new_tokens", type=count, default=48)
    p.add_argument("--grad_ckpt", action="store_true",
                   help="activation checkpointing per block: less memory, one more forward, same gradients")
    p.add_argument("--compile", action="store_true",
                   help="sample with torch.compile(model): pays on a GPU; on a CPU only after ~240k tokens")
    p.add_argument("--eval_prompts", type=count, default=64, help="held-out prompts")
    p.add_argument("--eval_samples", type=count, default=8, help="samples per held-out prompt (k)")
    p.add_argument("--eval_batch", type=lambda t: count(t, 0), default=0,
                   help="rows per generate call in evaluation (0: all eval_prompts x eval_samples at once)")
    p.add_argument("--sft_lr", type=real, default=2e-3)
    p.add_argument("--sft_batch", type=count, default=64)
    p.add_argument("--sft_slip", type=real, default=0.25, help="fraction of SFT answers off by one (tasks/sums.py)")
    args = p.parse_args(argv)
    p.set_defaults(**{k: UNSET for k in vars(args)})  # a second pass sees only the flags given
    given = {k for k, v in vars(p.parse_args(argv)).items() if v is not UNSET}
    return args, given


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
    return argparse.Namespace(**{**vars(args), **saved, **changed, "resume": True, "overwrite": args.overwrite,
                                 "out_dir": args.out_dir}), changed


def check_flags(args, world):
    """Flags that would fail later, or silently train on nothing."""
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
        ("{question}" not in args.prompt_template, "--prompt_template must contain {question}"),
        (args.data and not args.init_from, "--data needs --init_from: SFT exists only for the built-in toy task"),
        (task_name(args) != "sums" and not args.init_from,
         f"--task {task_name(args)} needs --init_from: SFT exists only for the built-in sums task"),
        (task_name(args) == "sums" and args.data, "--task sums makes its own problems: --data is for math or countdown"),
        (task_name(args) == "math" and not args.data, "--task math needs --data (JSONL of question / answer lines)"),
        (not 0 <= args.format_score <= 1, f"--format_score must be in [0, 1], got {args.format_score}"),
        (args.countdown_numbers > MAX_NUMS, f"--countdown_numbers {args.countdown_numbers}: at most {MAX_NUMS}"),
        (args.prompts_per_step % (world * args.mini_batches),
         f"--prompts_per_step {args.prompts_per_step} is not divisible by --mini_batches {args.mini_batches}"
         + (f" x {world} processes" if world > 1 else "")),
        (args.sft_batch < world, f"--sft_batch {args.sft_batch} is smaller than the {world} processes sharing it"),
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


@dataclass
class Dist:
    """What is fixed once the processes are up (module docstring)."""
    rank: int
    world: int
    device: torch.device

    def info(self, message):  # only rank 0 prints
        if self.rank == 0:
            print(message, flush=True)

    def barrier(self):  # wait until rank 0 has written what the other ranks read next
        if self.world > 1:
            dist.barrier()

    def all_reduce(self, values, op="sum"):
        """A list of floats summed (or, op="max", maxed) element-wise over the ranks."""
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.world > 1:
            dist.all_reduce(t, dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
        return t.tolist()

    def amp(self):  # bf16 autocast on cuda; float32 elsewhere. Log-probs and the loss are float32 anyway
        return (torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda"
                else contextlib.nullcontext())


def seed_of(*parts):
    """One seed from several integers, e.g. (seed, step, row): different parts (each below
    1,000,003) give different seeds."""
    seed = 0
    for part in parts:
        seed = seed * 1_000_003 + part
    return seed % 2**63


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a scheduler's stop), raised by `terminate` so that it ends a run as Ctrl-C does."""


def terminate(signum, frame):  # signal.signal(signal.SIGTERM, terminate)
    raise Terminated


def setup_processes(device_flag):
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    auto = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    try:
        device = torch.device(auto if device_flag == "auto" else device_flag)
    except RuntimeError:
        raise ValueError(f"--device {device_flag}: not a device (cpu, cuda, cuda:1, mps or auto)") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {device_flag}: train.py runs on cpu, cuda or mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {device_flag}: torch sees no GPU here")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"--device {device_flag}: only {torch.cuda.device_count()} GPU(s) visible")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device_flag}: mps is not available here")
    if world > 1:  # one process per GPU (nccl), or processes on the CPU (gloo)
        if device.type == "cuda":
            local, n_gpus = int(os.environ["LOCAL_RANK"]), torch.cuda.device_count()
            if local >= n_gpus:
                raise ValueError(f"process {local} of this node has no GPU: {n_gpus} visible; start at most {n_gpus} per node")
            device = torch.device("cuda", local)
            torch.cuda.set_device(device)
        elif device.type != "cpu":
            raise ValueError(f"torchrun runs on cuda (nccl) or cpu (gloo), not {device.type}")
        # the other ranks wait in a collective while rank 0 evaluates and writes a checkpoint, which on
        # a big model can take longer than nccl's default timeout of 10 minutes
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(hours=1))
    return Dist(rank, world, device)


@dataclass
class Codec:
    """The tokenizer and the prompt template: questions to token ids, responses back to text."""
    tok: object
    template: str
    eos_id: object  # an id, or a list of ids
    pad_id: int

    def encode(self, question):
        return self.tok.encode(self.template.replace("{question}", question)).ids

    def decode(self, rollout, i):
        n = int(rollout.response_mask[i].sum())
        return self.tok.decode(rollout.response_ids[i, :n].tolist())


def load_model(args, source, device):
    """The model and its codec: from a checkpoint directory (HF format with tokenizer.json), or
    a new toy model with the toy task's character tokenizer when source is None."""
    if source is None:
        tok = train_toy_tokenizer()
        model = Transformer(ModelConfig(vocab_size=tok.get_vocab_size(), eos_token_id=tok.token_to_id(EOS),
                                        **TOY_MODEL)).to(device)
    else:
        if not os.path.isdir(source):
            raise ValueError(f"{source}: not a directory (expected an HF-format model directory)")
        model, tok = Transformer.from_pretrained(source, torch.float32, device), load_tokenizer(source)
        bad = next((k for k, v in model.state_dict().items() if not bool(torch.isfinite(v).all())), None)
        if bad:
            raise ValueError(f"{source}: the weights of {bad} hold a NaN or an infinity")
        if tok.get_vocab_size() > model.config.vocab_size:
            raise ValueError(f"{source}: the tokenizer has {tok.get_vocab_size()} ids but config.json's "
                             f"vocab_size is {model.config.vocab_size}")
    eos_id = model.config.eos_token_id if model.config.eos_token_id is not None else tok.token_to_id(EOS)
    pad_id = tok.token_to_id(PAD)  # masks come from positions, so padding with an EOS id is fine too
    return model, Codec(tok, args.prompt_template, eos_id, pad_id if pad_id is not None else eos_ids(eos_id)[0])


def load_task(args, codec, max_seq_len):
    # a prompt of b UTF-8 bytes has at least b / longest tokens (longest: the longest token's
    # characters, bytes for byte-level BPE as Qwen's and Llama 3's; a tokenizer that drops text or
    # maps it to <unk> can have fewer), so a question far too long for the context is refused
    # before the tokenizer spends minutes on it
    longest = max(map(len, codec.tok.get_vocab()))

    def too_long(question):
        n_bytes = len(question.encode("utf-8"))
        if n_bytes > longest * max_seq_len:
            return (f"the question is {n_bytes:,} bytes, at least {n_bytes // longest:,} tokens: more than the "
                    f"model's context of {max_seq_len} tokens")
        n = len(codec.encode(question))
        if n + args.max_new_tokens > max_seq_len:
            return (f"the prompt is {n} tokens; with --max_new_tokens {args.max_new_tokens} that exceeds "
                    f"the model's context of {max_seq_len} tokens")
    name = task_name(args)
    if name == "math":
        task = FileTask(args.data, args.eval_prompts, too_long)
    elif name == "countdown":
        task = CountdownTask(args.eval_prompts, args.data, args.countdown_numbers, args.countdown_max,
                             args.countdown_target_max, args.format_score)
        widest = countdown_question([args.countdown_max] * args.countdown_numbers, args.countdown_target_max)
        for q in [widest] if task.train_set is None else [q for q, _ in task.eval_set + task.train_set]:
            if too_long(q):
                raise ValueError(f"countdown: {too_long(q)}")
    else:
        if too_long(ToyTask.LONGEST):
            raise ValueError(f"toy task: {too_long(ToyTask.LONGEST)}")
        task = ToyTask(args.eval_prompts)
    if args.reward:
        task.reward = load_reward(args.reward)
    return task


def task_name(args):
    """--task, or what it means when not given (runs saved before it existed too)."""
    return args.task or ("math" if args.data else "sums")


def reference_of(args, state, changed):
    """Where pi_ref is: {"dir": relative to out_dir (a toy run's sft/) or absolute (--init_from),
    "sha256": its checksum once RL has started}. On --resume it is the saved run's, unless
    --init_from names where an RL-only run's reference moved to."""
    if not state:
        return {"dir": os.path.abspath(args.init_from) if args.init_from else "sft"}
    ref = dict(state["ref"])
    if "init_from" in changed:
        if state["stage"] != "rl" or not state["args"]["init_from"]:
            raise ValueError("--resume --init_from names where the reference of an RL-only run moved; "
                             "this run's reference is its own sft/")
        ref["dir"] = os.path.abspath(args.init_from)
    return ref


def load_reference(args, ref, device):
    """pi_ref, frozen; on cuda held in bf16 (it is never trained). Refused if it changed."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    path = checkpoint.reference(args.out_dir, ref)
    return Transformer.from_pretrained(path, dtype, device).eval().requires_grad_(False)
