"""
Train a language model with FlowRL (or the GRPO baseline) on math problems.

    python train.py                      # built-in toy task, CPU, a few minutes: SFT then RL
    python train.py --algo grpo          # the same run with GRPO
    python train.py --resume             # continue a stopped run from <out_dir>/ckpt
    python train.py --init_from out/sft --out_dir out/rl2    # RL only, from a saved model
    torchrun --standalone --nproc_per_node=2 train.py        # 2 processes (GPUs, or CPU with gloo)
    python train.py --init_from ~/Qwen2.5-0.5B-Instruct --data gsm8k.jsonl --device cuda --lr 1e-6 \\
        --prompt_template $'<|im_start|>user\\n{question}<|im_end|>\\n<|im_start|>assistant\\n'

Stage 1, SFT (toy task only): a small model learns from scratch on demonstrations whose order of
additions is drawn uniformly (task.py), so RL starts from a diverse, imperfect policy.
Stage 2, RL: each step samples prompts_per_step prompts x group_size responses, scores them with
reward.py, normalises rewards within each group, and takes mini_batches optimizer steps.
Writes <out_dir>/metrics.jsonl, <out_dir>/sft (the SFT model) and <out_dir>/ckpt (the latest
checkpoint: an HF-format model that transformers loads, tokenizer.json, the log Z head, the
optimizer state and the position of the problem stream).

Where this follows the official FlowRL recipe and where it departs (toy scale):
- as official: group size 8, beta 15, the capped importance weight, log Z not detached, AdamW
  with weight decay 0.1, warm-up then a constant lr, grad-norm clip 1.0, rollout temperature 1.0,
  one rollout split into mini-batches (one optimizer step each, later ones off-policy: w != 1).
- lr 1e-4 instead of 1e-6 (a 1M-parameter model, not 7B); 16 prompts a step instead of 512.
- pi_old is a teacher-forced pass over each mini-batch before any update, so the first
  mini-batch has w == 1 exactly; the sampler's own log-probs are logged against it
  (sampler_logp_diff), a check that sampling and training see the same distribution.
- evaluation samples 8 completions per prompt at temperature 1.0 (the paper: 16 at 0.6).

Under torchrun each process (rank) samples a disjoint share of every step's prompts and
DistributedDataParallel averages the gradients; each rank's loss is scaled so that the update is
the single-process update on the union of the shares (the comment above the RL loop's backward).
Every response draws its samples from its own generator, seeded by (seed, step, its index in the
step's whole batch), so the same responses come out on any number of processes (up to float
rounding, which can flip a draw that lands on a boundary), and ranks never share a random stream.
Rank 0 alone prints, evaluates and writes files.
"""
import argparse
import contextlib
import datetime
import json
import math
import os
import random
import shutil
import sys
import time

import torch
import torch.distributed as dist
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from flowrl import WEIGHT_MODES, LogZHead, flowrl_loss, group_normalize, grpo_loss
from checkpoint import load_tokenizer, read_json, write_text
from model import ModelConfig, Transformer
from reward import math_reward
from sample import Rollout, eos_ids, generate, left_pad, response_mask, token_logprobs
from task import EOS, PAD, FileTask, ToyTask, toy_solution, train_toy_tokenizer



def count(text, least=1):
    """argparse type: an integer >= least."""
    n = int(text)
    if n < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, got {n}")
    return n


p = argparse.ArgumentParser(description=__doc__.split("\n")[1], formatter_class=argparse.RawTextHelpFormatter)
p.add_argument("--algo", choices=["flowrl", "grpo"], default="flowrl")
p.add_argument("--out_dir", default="out")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--device", default="auto", help="auto: cuda, then mps, then cpu")
p.add_argument("--sft_steps", type=lambda t: count(t, 0), default=600, help="SFT steps (toy task only)")
p.add_argument("--rl_steps", type=lambda t: count(t, 0), default=100)
p.add_argument("--group_size", type=count, default=8, help="responses per prompt (official: 8)")
p.add_argument("--prompts_per_step", type=count, default=16)
p.add_argument("--mini_batches", type=count, default=2, help="optimizer steps per rollout")
p.add_argument("--eval_interval", type=count, default=25, help="RL steps between evaluations")
p.add_argument("--beta", type=float, default=15.0, help="reward temperature (official: 15)")
p.add_argument("--lr", type=float, default=1e-4, help="RL learning rate (official 7B: 1e-6)")
p.add_argument("--init_from", help="an HF-format Llama/Qwen2 directory with tokenizer.json")
p.add_argument("--data", help="JSONL with 'question' and 'answer' per line (default: the toy task)")
p.add_argument("--prompt_template", default="{question}\n")
p.add_argument("--resume", action="store_true", help="continue from <out_dir>/ckpt")
p.add_argument("--weight", choices=WEIGHT_MODES, default="cap", help="FlowRL importance weight")
p.add_argument("--detach_log_z", action="store_true", help="no gradient from log Z into the LM")
p.add_argument("--logz_dropout", type=float, default=0.1,
               help="dropout in the log Z head (official: 0.1). Masks are drawn per rank, so only\n"
                    "with 0 does a torchrun run repeat a single-process one to float precision")
p.add_argument("--kl_coef", type=float, default=0.0, help="GRPO's k3 KL coefficient")
p.add_argument("--max_new_tokens", type=count, default=48)
p.add_argument("--eval_prompts", type=count, default=64, help="held-out prompts")
p.add_argument("--eval_samples", type=count, default=8, help="samples per held-out prompt (k)")
p.add_argument("--sft_lr", type=float, default=2e-3)
p.add_argument("--sft_batch", type=count, default=64)
p.add_argument("--sft_slip", type=float, default=0.25, help="fraction of SFT answers off by one (task.py)")
args = p.parse_args()

# the toy model: 4 layers of width 128, about 0.8M parameters (a character vocabulary)
from task import TOY_MODEL as TOY
CLIP = 1.0  # grad-norm clip (official)
WARMUP = 10  # RL warm-up steps (official), then a constant lr

# ---- setup: resume, processes, device, output directory ----------------------------------------
# torchrun sets RANK and WORLD_SIZE; a plain `python train.py` is rank 0 of a world of 1
rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
CKPT, METRICS = os.path.join(args.out_dir, "ckpt"), os.path.join(args.out_dir, "metrics.jsonl")
state = None
BAD_INPUT = (ValueError, OSError, SafetensorError)  # reported as one line naming file and problem
try:
    if args.resume:  # the run's own settings first: they decide the device and the checks below
        # only ckpt.old is left after a crash between the two renames of save_checkpoint
        saved = CKPT + ".old" if not os.path.isdir(CKPT) and os.path.isdir(CKPT + ".old") else CKPT
        if not os.path.isfile(os.path.join(saved, "trainer_state.json")):
            sys.exit(f"error: --resume: no checkpoint in {CKPT}")
        state = read_json(os.path.join(saved, "trainer_state.json"))
        # the run's own settings, except its length and device when given again on the command line
        given = {k for k in ("sft_steps", "rl_steps", "eval_interval", "device")
                 if any(a == f"--{k}" or a.startswith(f"--{k}=") for a in sys.argv)}
        vars(args).update({k: v for k, v in state["args"].items() if k not in given and k != "resume"})
except BAD_INPUT as e:
    sys.exit(f"error: {e}")
if "{question}" not in args.prompt_template:
    p.error("--prompt_template must contain {question}")
if args.data and not args.init_from:
    p.error("--data needs --init_from: SFT exists only for the built-in toy task")
if args.prompts_per_step % (world * args.mini_batches):
    p.error(f"--prompts_per_step {args.prompts_per_step} is not divisible by --mini_batches "
            f"{args.mini_batches}" + (f" x {world} processes" if world > 1 else ""))
if args.sft_batch < world:
    p.error(f"--sft_batch {args.sft_batch} is smaller than the {world} processes sharing it")
if not 0 <= args.logz_dropout < 1:
    p.error(f"--logz_dropout must be in [0, 1), got {args.logz_dropout}")

auto = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
device = torch.device(auto if args.device == "auto" else args.device)
if device.type == "cuda" and not torch.cuda.is_available():
    p.error(f"--device {args.device}: torch sees no GPU here")
if world > 1:  # one process per GPU (nccl), or processes on the CPU (gloo)
    if device.type == "cuda":
        local, n_gpus = int(os.environ["LOCAL_RANK"]), torch.cuda.device_count()
        if local >= n_gpus:
            p.error(f"process {local} of this node has no GPU: {n_gpus} visible; start at most {n_gpus} per node")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    elif device.type != "cpu":
        p.error(f"torchrun runs on cuda (nccl) or cpu (gloo), not {device.type}")
    # the other ranks wait in a collective while rank 0 evaluates and writes a checkpoint, which on
    # a big model can take longer than nccl's default timeout of 10 minutes
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(hours=1))


def info(message):  # only rank 0 prints
    if rank == 0:
        print(message, flush=True)


def barrier():  # wait until rank 0 has written what the other ranks read next
    if world > 1:
        dist.barrier()


try:
    if rank == 0 and state:
        if not os.path.isdir(CKPT):
            os.replace(CKPT + ".old", CKPT)  # the crash case above: ckpt.old is the checkpoint
        lines = open(METRICS).readlines() if os.path.exists(METRICS) else []
        with open(METRICS, "w") as f:  # drop what was logged after the checkpoint
            f.writelines(lines[:state["metrics_lines"]])
    elif rank == 0:  # a new run: nothing of an earlier run in out_dir may be resumed or mixed in
        os.makedirs(args.out_dir, exist_ok=True)
        for old in (METRICS, CKPT, CKPT + ".old", CKPT + ".tmp"):
            if os.path.isdir(old):
                shutil.rmtree(old)
            elif os.path.exists(old):
                os.remove(old)
except BAD_INPUT as e:
    sys.exit(f"error: {e}")
barrier()  # the other ranks read the checkpoint next, and write nothing


def amp():  # bf16 autocast on cuda; float32 elsewhere. Log-probs and the loss are float32 anyway
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


def seed_of(*parts):
    """One seed from several integers, e.g. (seed, step, row): different parts (each below
    1,000,003) give different seeds."""
    seed = 0
    for part in parts:
        seed = seed * 1_000_003 + part
    return seed % 2**63


torch.manual_seed(args.seed)  # the toy model's initial weights, the same on every rank
py_rng = random.Random(args.seed)  # problems and SFT demonstrations, the same on every rank


try:  # bad input (a broken checkpoint, a bad data line): one line naming file and problem, no traceback
    if state or args.init_from:
        src = CKPT if state else args.init_from
        model, tok = Transformer.from_pretrained(src, torch.float32, device), load_tokenizer(src)
except BAD_INPUT as e:
    sys.exit(f"error: {e}")
if not (state or args.init_from):
    tok = train_toy_tokenizer()
    model = Transformer(ModelConfig(vocab_size=tok.get_vocab_size(), eos_token_id=tok.token_to_id(EOS),
                                    **TOY)).to(device)
eos_id = model.config.eos_token_id if model.config.eos_token_id is not None else tok.token_to_id(EOS)
pad_id = tok.token_to_id(PAD)  # masks come from positions, so padding with an EOS id is fine too
pad_id = pad_id if pad_id is not None else eos_ids(eos_id)[0]
# the policy as trained: under torchrun wrapped in DDP, whose backward averages the gradients over
# the ranks. Sampling, evaluation and the no-grad passes use the bare model: nothing to average.
policy = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model


def encode(question):
    return tok.encode(args.prompt_template.replace("{question}", question)).ids


def too_long(question):
    n, ctx = len(encode(question)), model.config.max_seq_len
    if n + args.max_new_tokens > ctx:
        return (f"the prompt is {n} tokens; with --max_new_tokens {args.max_new_tokens} that exceeds "
                f"the model's context of {ctx} tokens")


try:
    task = FileTask(args.data, args.eval_prompts, too_long) if args.data else ToyTask(args.eval_prompts)
    if not args.data and too_long(ToyTask.LONGEST):
        raise ValueError(f"toy task: {too_long(ToyTask.LONGEST)}")
except BAD_INPUT as e:
    sys.exit(f"error: {e}")
info(f"{sum(p.numel() for p in model.parameters()):,} parameters on {device}"
     f"{f' x {world} processes' if world > 1 else ''}; "
     f"{'data ' + args.data if args.data else 'toy task'}; out_dir {args.out_dir}")


# ---- logging, checkpoints, evaluation -----------------------------------------------------------
def log(record):
    if rank > 0:
        return
    with open(METRICS, "a") as f:
        f.write(json.dumps(record) + "\n")


def save_checkpoint(stage, step, opt, logz):
    """Everything to continue the run, written beside the last checkpoint and swapped in by two
    renames: a crash at any point leaves a complete checkpoint (ckpt, or ckpt.old). Rank 0 writes
    it; the ranks hold the same weights and optimizer state. No random state is kept: what is
    random in a step is seeded from (seed, step), so a resumed run repeats an uninterrupted one."""
    if rank > 0:
        return
    tmp = CKPT + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save(os.path.join(tmp, "tokenizer.json"))
    tensors = {}
    if logz is not None:
        tensors.update({f"logz.{k}": v for k, v in logz.state_dict().items()})
    opt_state = opt.state_dict()
    tensors.update({f"opt.{i}.{k}": v for i, s in opt_state["state"].items() for k, v in s.items()})
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, os.path.join(tmp, "state.safetensors"))
    with open(METRICS) as f:
        n_lines = sum(1 for _ in f)
    write_text(os.path.join(tmp, "trainer_state.json"), json.dumps(dict(
        stage=stage, step=step, metrics_lines=n_lines, py_rng=py_rng.getstate(), args=vars(args),
        ref_dir=REF_DIR, opt_groups=opt_state["param_groups"])))
    shutil.rmtree(CKPT + ".old", ignore_errors=True)  # left by a crash in an earlier save
    if os.path.isdir(CKPT):
        os.replace(CKPT, CKPT + ".old")
    os.replace(tmp, CKPT)
    shutil.rmtree(CKPT + ".old", ignore_errors=True)


def load_checkpoint(opt, logz):
    tensors = load_file(os.path.join(CKPT, "state.safetensors"))
    version, internal, gauss = state["py_rng"]
    py_rng.setstate((version, tuple(internal), gauss))
    if logz is not None:
        logz.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("logz.")})
    groups = state["opt_groups"]
    per_param = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, i, name = k.split(".", 2)
            per_param.setdefault(int(i), {})[name] = v.to(device) if v.dim() else v
    if groups:
        opt.load_state_dict({"state": per_param, "param_groups": groups})


def check_finite(value, what, stage, step):
    if not math.isfinite(value):
        sys.exit(f"error: {stage} step {step}: {what} is {value}; stopping. The last good checkpoint "
                 f"is kept in {CKPT}" + (" (none was written yet)" if not os.path.isdir(CKPT) else ""))


def all_reduce(values, op="sum"):
    """A list of floats summed (or, op="max", maxed) element-wise over the ranks."""
    t = torch.tensor(values, dtype=torch.float64, device=device)
    if world > 1:
        dist.all_reduce(t, dist.ReduceOp.SUM if op == "sum" else dist.ReduceOp.MAX)
    return t.tolist()


def decode(rollout, i):
    n = int(rollout.response_mask[i].sum())
    return tok.decode(rollout.response_ids[i, :n].tolist())


def rollout_of(prompts, responses):
    """A Rollout from token lists, for SFT: prompts left-padded, responses (ending in EOS)
    right-padded."""
    prompt_ids, prompt_mask = left_pad(prompts, pad_id, device)
    N = max(map(len, responses))
    ids = torch.tensor([r + [pad_id] * (N - len(r)) for r in responses], device=device)  # (B, N)
    return Rollout(prompt_ids, prompt_mask, ids, response_mask(ids, eos_id), torch.zeros(ids.shape, device=device))


def evaluate(stage, step):
    """k samples at temperature 1.0 per held-out prompt, and one greedy completion. Rank 0 alone;
    the others go on and wait for it at the next step's first all-reduce."""
    if rank > 0:
        return
    k, problems = args.eval_samples, task.eval_set
    g = torch.Generator(device).manual_seed(10_000 + step)  # apart from the seeds of the training rollouts
    with amp():
        r = generate(model, [encode(q) for q, _ in problems for _ in range(k)], args.max_new_tokens,
                     eos_id=eos_id, pad_id=pad_id, generator=g)
        greedy = generate(model, [encode(q) for q, _ in problems], args.max_new_tokens, temperature=0,
                          eos_id=eos_id, pad_id=pad_id)
    texts = [decode(r, i) for i in range(len(problems) * k)]
    correct = [math_reward(t, problems[i // k][1]) == 1.0 for i, t in enumerate(texts)]
    per_prompt = [range(j * k, (j + 1) * k) for j in range(len(problems))]
    record = dict(
        phase="eval", stage=stage, step=step, k=k,
        accuracy=sum(correct) / len(correct),
        pass_at_k=sum(any(correct[i] for i in rows) for rows in per_prompt) / len(problems),
        distinct_correct=sum(len({texts[i] for i in rows if correct[i]}) for rows in per_prompt) / len(problems),
        greedy_accuracy=sum(math_reward(decode(greedy, j), a) == 1.0
                            for j, (_, a) in enumerate(problems)) / len(problems))
    log(record)
    info(f"eval {stage} step {step}: accuracy {record['accuracy']:.3f}  pass@{k} {record['pass_at_k']:.3f}  "
         f"distinct correct {record['distinct_correct']:.2f}  greedy {record['greedy_accuracy']:.3f}")


# ---- stage 1: SFT on demonstrations (toy task only) ---------------------------------------------
REF_DIR = state["ref_dir"] if state else os.path.abspath(args.init_from or os.path.join(args.out_dir, "sft"))
stage, start = (state["stage"], state["step"]) if state else ("rl" if args.init_from else "sft", 0)
if stage == "sft":
    opt = torch.optim.AdamW(model.parameters(), lr=args.sft_lr, weight_decay=0.1)
    if state:
        load_checkpoint(opt, None)
    t0 = time.time()
    for step in range(start + 1, args.sft_steps + 1):
        # linear warm-up over 30 steps, then cosine decay to a tenth
        frac = min(1.0, step / 30) * (0.55 + 0.45 * math.cos(math.pi * step / args.sft_steps))
        for group in opt.param_groups:
            group["lr"] = args.sft_lr * frac
        problems = [task.train_problem(py_rng) for _ in range(args.sft_batch)]
        batch = rollout_of([encode(q) for q, _ in problems],
                           [tok.encode(toy_solution(q, py_rng, args.sft_slip)).ids + [eos_id] for q, _ in problems])
        n_union = batch.response_mask.sum()  # completion tokens of the whole batch, built on every rank
        with amp():
            logp, _ = token_logprobs(policy, batch[rank::world])  # this rank's rows
        loss = -logp.sum() / n_union  # this rank's share of the cross-entropy on the completion tokens
        loss_union = all_reduce([loss.item()])[0]
        check_finite(loss_union, "the SFT loss", "sft", step)
        opt.zero_grad(set_to_none=True)
        (loss * world).backward()  # DDP averages the gradients over the ranks: x world sums the shares
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        if step % 25 == 0 or step == args.sft_steps:
            log(dict(phase="train", stage="sft", step=step, loss=loss_union, grad_norm=grad_norm.item(),
                     lr=args.sft_lr * frac))
            info(f"sft step {step}/{args.sft_steps}: loss {loss_union:.4f}  {time.time() - t0:.0f}s")
        if step % 200 == 0 and step < args.sft_steps:
            save_checkpoint("sft", step, opt, None)
    evaluate("sft", args.sft_steps)
    if rank == 0:
        model.save_pretrained(REF_DIR)  # the starting point of RL, and pi_ref
        tok.save(os.path.join(REF_DIR, "tokenizer.json"))
    barrier()  # every rank reads pi_ref from REF_DIR next
    stage, start, state = "rl", 0, None

# ---- stage 2: RL ---------------------------------------------------------------------------------
G = args.group_size
ref_model = Transformer.from_pretrained(REF_DIR, torch.float32, device).eval().requires_grad_(False)
torch.manual_seed(args.seed)  # the log Z head's initial weights depend on the seed alone
logz = LogZHead(model.config.n_embd, dropout=args.logz_dropout).to(device)  # float32, trained with the policy
logz_head = torch.nn.parallel.DistributedDataParallel(logz) if world > 1 and args.algo == "flowrl" else logz
params = list(model.parameters()) + list(logz.parameters())
opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.1)
if state:
    load_checkpoint(opt, logz)
else:
    if args.init_from:
        evaluate("rl", 0)  # the starting point (after SFT it was just evaluated)
    save_checkpoint("rl", 0, opt, logz)  # RL starts here on --resume, before its first step ends
for step in range(start + 1, args.rl_steps + 1):
    t0 = time.time()
    for group in opt.param_groups:
        group["lr"] = args.lr * min(1.0, step / WARMUP)
    # every rank draws the step's prompts and keeps every world-th one: rank r answers prompts
    # r, r + world, ..., so mini-batch j over all ranks holds the prompts of a single process's
    # mini-batch j. Each response samples from a generator seeded by its index in the whole batch.
    problems = [task.train_problem(py_rng) for _ in range(args.prompts_per_step)]
    shares = range(rank, args.prompts_per_step, world)  # this rank's prompts, by index in the step
    mine = [problems[i] for i in shares]
    index = [i * G + g for i in shares for g in range(G)]
    generators = [torch.Generator(device).manual_seed(seed_of(args.seed, step, 0, i)) for i in index]
    with amp():
        rollout = generate(model, [encode(q) for q, _ in mine for _ in range(G)], args.max_new_tokens,
                           eos_id=eos_id, pad_id=pad_id, generator=generators)
    B = len(index)  # this rank's responses; rows i*G .. i*G+G-1 answer mine[i]
    texts = [decode(rollout, i) for i in range(B)]
    rewards = torch.tensor([math_reward(t, mine[i // G][1]) for i, t in enumerate(texts)], device=device)  # (B,)
    r_hat = group_normalize(rewards, G)  # (B,) whole groups on each rank
    # mini-batches of whole groups; pi_old and pi_ref of each before any update, same shapes as
    # the training pass, so that on the first mini-batch logp == logp_old bit for bit (w == 1)
    rows = B // args.mini_batches
    parts = [slice(i, i + rows) for i in range(0, B, rows)]
    minis = [rollout[s] for s in parts]  # mini_batches Rollouts of B / mini_batches rows
    with torch.no_grad(), amp():
        old = [token_logprobs(model, mb)[0] for mb in minis]  # (B / mini_batches, N) each
        ref = [token_logprobs(ref_model, mb)[0] for mb in minis]
    logz.train()
    torch.manual_seed(seed_of(args.seed, step, 1, rank))  # the log Z head's dropout, per rank and step
    stats = []
    for mb, s, logp_old, logp_ref in zip(minis, parts, old, ref):
        with amp():
            logp, hidden = token_logprobs(policy, mb)
        if args.algo == "flowrl":
            log_z = logz_head(hidden.detach() if args.detach_log_z else hidden, mb.prompt_mask)
            loss, m = flowrl_loss(logp, logp_ref, logp_old, mb.response_mask, r_hat[s], log_z,
                                  beta=args.beta, weight=args.weight)
            n = float(rows)  # the loss and its metrics are means over responses
        else:
            loss, m = grpo_loss(logp, logp_ref, logp_old, mb.response_mask, r_hat[s], kl_coef=args.kl_coef)
            n = mb.response_mask.sum().item()  # ... means over response tokens
        # The union's loss is the mean over all ranks' n_union units; this rank's mean over its n
        # units times n / n_union is its share of it. DDP averages the gradients (divides their
        # sum by world), so the loss to backward is world * n / n_union times this rank's: 1 alone.
        n_union, *means = all_reduce([n, n * loss.item()] + [n * v for v in m.values()])
        m = {k: v / n_union for k, v in zip(["loss", *m], means)}  # the union's loss and metrics
        check_finite(m["loss"], "the loss", "rl", step)
        opt.zero_grad(set_to_none=True)
        (loss * (world * n / n_union)).backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, CLIP)  # of the averaged gradient
        check_finite(grad_norm.item(), "the gradient norm", "rl", step)
        opt.step()
        stats.append(dict(m, grad_norm=grad_norm.item()))
    mask = rollout.response_mask
    drift = (rollout.logprobs[parts[0]] - old[0]).abs()[mask[parts[0]]].max().item()  # sampler vs pi_old
    reward_sum, n_responses, n_tokens = all_reduce([rewards.sum().item(), B, mask.sum().item()])
    record = dict(phase="train", stage="rl", step=step, algo=args.algo,
                  reward=reward_sum / n_responses, **{k: sum(s[k] for s in stats) / len(stats) for k in stats[0]},
                  grad_norm_max=max(s["grad_norm"] for s in stats),
                  **({"w_mean_first": stats[0]["w_mean"]} if args.algo == "flowrl" else {}),  # 1 exactly
                  sampler_logp_diff=all_reduce([drift], op="max")[0],
                  response_length=n_tokens / n_responses,
                  tokens_per_s=n_tokens / (time.time() - t0))
    if step % args.eval_interval == 0 or step == 1:
        record["sample"] = problems[0][0] + " -> " + texts[0]
    log(record)
    extra = f"  delta {record['delta_abs']:.2f}  log Z {record['log_z']:.2f}" if args.algo == "flowrl" else ""
    info(f"rl step {step}/{args.rl_steps}: reward {record['reward']:.3f}  loss {record['loss']:.4f}{extra}  "
         f"grad {record['grad_norm']:.2f}  len {record['response_length']:.1f}  "
         f"{record['tokens_per_s']:.0f} tok/s")
    if step % args.eval_interval == 0 or step == args.rl_steps:
        evaluate("rl", step)
        save_checkpoint("rl", step, opt, logz)
if world > 1:
    dist.destroy_process_group()
