"""
Train a language model with FlowRL (or the GRPO baseline) on math problems.

    python train.py                      # built-in toy task, CPU, a few minutes: SFT then RL
    python train.py --algo grpo          # the same run with GRPO
    python train.py --resume             # continue a stopped run from <out_dir>/ckpt
    python train.py --init_from out/sft --out_dir out/rl2    # RL only, from a saved model
    python train.py --init_from ~/Qwen2.5-0.5B-Instruct --data gsm8k.jsonl --device cuda --lr 1e-6 \\
        --prompt_template $'<|im_start|>user\\n{question}<|im_end|>\\n<|im_start|>assistant\\n'

Stage 1, SFT (toy task only): a small model learns from scratch on demonstrations whose order of
additions is drawn uniformly (task.py), so RL starts from a diverse, imperfect policy.
Stage 2, RL: each step samples prompts_per_step prompts x group_size responses, scores them with
reward.py, normalises rewards within each group, and takes mini_batches optimizer steps.
Writes <out_dir>/metrics.jsonl, <out_dir>/sft (the SFT model) and <out_dir>/ckpt (the latest
checkpoint: an HF-format model that transformers loads, tokenizer.json, the log Z head,
optimizer and RNG state).

Where this follows the official FlowRL recipe and where it departs (toy scale):
- as official: group size 8, beta 15, the capped importance weight, log Z not detached, AdamW
  with weight decay 0.1, warm-up then a constant lr, grad-norm clip 1.0, rollout temperature 1.0,
  one rollout split into mini-batches (one optimizer step each, later ones off-policy: w != 1).
- lr 1e-4 instead of 1e-6 (a 1M-parameter model, not 7B); 16 prompts a step instead of 512.
- pi_old is a teacher-forced pass over each mini-batch before any update, so the first
  mini-batch has w == 1 exactly; the sampler's own log-probs are logged against it
  (sampler_logp_diff), a check that sampling and training see the same distribution.
- evaluation samples 8 completions per prompt at temperature 1.0 (the paper: 16 at 0.6).
"""
import argparse
import contextlib
import json
import math
import os
import random
import shutil
import sys
import time

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from flowrl import WEIGHT_MODES, LogZHead, flowrl_loss, group_normalize, grpo_loss
from model import ModelConfig, Transformer, load_tokenizer, read_json, write_text
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
p.add_argument("--kl_coef", type=float, default=0.0, help="GRPO's k3 KL coefficient")
p.add_argument("--max_new_tokens", type=count, default=48)
p.add_argument("--eval_prompts", type=count, default=64, help="held-out prompts")
p.add_argument("--eval_samples", type=count, default=8, help="samples per held-out prompt (k)")
p.add_argument("--sft_lr", type=float, default=2e-3)
p.add_argument("--sft_batch", type=count, default=64)
p.add_argument("--sft_slip", type=float, default=0.25, help="fraction of SFT answers off by one (task.py)")
args = p.parse_args()

# the toy model: 4 layers of width 128, about 0.8M parameters (a character vocabulary)
TOY = dict(n_embd=128, n_layer=4, n_head=4, n_kv_head=2, intermediate_size=384, max_seq_len=128)
CLIP = 1.0  # grad-norm clip (official)
WARMUP = 10  # RL warm-up steps (official), then a constant lr

# ---- setup: device, output directory, resume ------------------------------------------------
if "{question}" not in args.prompt_template:
    p.error("--prompt_template must contain {question}")
if args.data and not args.init_from:
    p.error("--data needs --init_from: SFT exists only for the built-in toy task")
if args.prompts_per_step % args.mini_batches:
    p.error(f"--prompts_per_step {args.prompts_per_step} is not divisible by --mini_batches {args.mini_batches}")
os.makedirs(args.out_dir, exist_ok=True)
CKPT, METRICS = os.path.join(args.out_dir, "ckpt"), os.path.join(args.out_dir, "metrics.jsonl")
state = None
BAD_INPUT = (ValueError, OSError, SafetensorError)  # reported as one line naming file and problem
try:
    if args.resume:
        if not os.path.isdir(CKPT) and os.path.isdir(CKPT + ".old"):
            os.replace(CKPT + ".old", CKPT)  # a crash between the two renames of save_checkpoint
        if not os.path.isfile(os.path.join(CKPT, "trainer_state.json")):
            sys.exit(f"error: --resume: no checkpoint in {CKPT}")
        state = read_json(os.path.join(CKPT, "trainer_state.json"))
        # the run's own settings, except its length and device when given again on the command line
        given = {k for k in ("sft_steps", "rl_steps", "eval_interval", "device")
                 if any(a == f"--{k}" or a.startswith(f"--{k}=") for a in sys.argv)}
        vars(args).update({k: v for k, v in state["args"].items() if k not in given and k != "resume"})
        lines = open(METRICS).readlines() if os.path.exists(METRICS) else []
        with open(METRICS, "w") as f:  # drop what was logged after the checkpoint
            f.writelines(lines[:state["metrics_lines"]])
    else:  # a new run: nothing of an earlier run in out_dir may be resumed or mixed in
        for old in (METRICS, CKPT, CKPT + ".old", CKPT + ".tmp"):
            if os.path.isdir(old):
                shutil.rmtree(old)
            elif os.path.exists(old):
                os.remove(old)
except BAD_INPUT as e:
    sys.exit(f"error: {e}")

auto = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
device = torch.device(auto if args.device == "auto" else args.device)


def amp():  # bf16 autocast on cuda; float32 elsewhere. Log-probs and the loss are float32 anyway
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


torch.manual_seed(args.seed)
py_rng = random.Random(args.seed)  # problems and SFT demonstrations
sampler = torch.Generator(device).manual_seed(args.seed)  # RL rollouts

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
print(f"{sum(p.numel() for p in model.parameters()):,} parameters on {device}; "
      f"{'data ' + args.data if args.data else 'toy task'}; out_dir {args.out_dir}")


# ---- logging, checkpoints, evaluation -----------------------------------------------------------
def log(record):
    with open(METRICS, "a") as f:
        f.write(json.dumps(record) + "\n")


def save_checkpoint(stage, step, opt, logz):
    """Everything to continue the run, written beside the last checkpoint and swapped in by two
    renames: a crash at any point leaves a complete checkpoint (ckpt, or ckpt.old)."""
    tmp = CKPT + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tok.save(os.path.join(tmp, "tokenizer.json"))
    tensors = {"rng.torch": torch.get_rng_state(), "rng.sampler": sampler.get_state()}
    if device.type == "cuda":
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    if logz is not None:
        tensors.update({f"logz.{k}": v for k, v in logz.state_dict().items()})
    opt_state = opt.state_dict()
    tensors.update({f"opt.{i}.{k}": v for i, s in opt_state["state"].items() for k, v in s.items()})
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, os.path.join(tmp, "state.safetensors"))
    with open(METRICS) as f:
        n_lines = sum(1 for _ in f)
    write_text(os.path.join(tmp, "trainer_state.json"), json.dumps(dict(
        stage=stage, step=step, metrics_lines=n_lines, py_rng=py_rng.getstate(), args=vars(args),
        ref_dir=REF_DIR, opt_groups=opt_state["param_groups"], device_type=device.type)))
    shutil.rmtree(CKPT + ".old", ignore_errors=True)  # left by a crash in an earlier save
    if os.path.isdir(CKPT):
        os.replace(CKPT, CKPT + ".old")
    os.replace(tmp, CKPT)
    shutil.rmtree(CKPT + ".old", ignore_errors=True)


def load_checkpoint(opt, logz):
    tensors = load_file(os.path.join(CKPT, "state.safetensors"))
    torch.set_rng_state(tensors["rng.torch"])
    if state["device_type"] == device.type:  # a generator's state is only valid on its own device type
        sampler.set_state(tensors["rng.sampler"])
        if device.type == "cuda":
            torch.cuda.set_rng_state(tensors["rng.cuda"], device)
    else:
        print(f"note: resuming on {device.type}, saved on {state['device_type']}: the sampler is "
              f"re-seeded, so the run will not repeat an uninterrupted one exactly")
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
    """k samples at temperature 1.0 per held-out prompt, and one greedy completion."""
    k, problems = args.eval_samples, task.eval_set
    g = torch.Generator(device).manual_seed(10_000 + step)  # apart from the training sampler's stream
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
    print(f"eval {stage} step {step}: accuracy {record['accuracy']:.3f}  pass@{k} {record['pass_at_k']:.3f}  "
          f"distinct correct {record['distinct_correct']:.2f}  greedy {record['greedy_accuracy']:.3f}", flush=True)


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
        with amp():
            logp, _ = token_logprobs(model, batch)
        loss = -logp.sum() / batch.response_mask.sum()  # cross-entropy on the completion tokens
        check_finite(loss.item(), "the SFT loss", "sft", step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        if step % 25 == 0 or step == args.sft_steps:
            log(dict(phase="train", stage="sft", step=step, loss=loss.item(), lr=args.sft_lr * frac))
            print(f"sft step {step}/{args.sft_steps}: loss {loss.item():.4f}  {time.time() - t0:.0f}s", flush=True)
        if step % 200 == 0 and step < args.sft_steps:
            save_checkpoint("sft", step, opt, None)
    evaluate("sft", args.sft_steps)
    model.save_pretrained(REF_DIR)  # the starting point of RL, and pi_ref
    tok.save(os.path.join(REF_DIR, "tokenizer.json"))
    stage, start, state = "rl", 0, None

# ---- stage 2: RL ---------------------------------------------------------------------------------
G, B = args.group_size, args.prompts_per_step * args.group_size
ref_model = Transformer.from_pretrained(REF_DIR, torch.float32, device).eval().requires_grad_(False)
logz = LogZHead(model.config.n_embd).to(device)  # float32, trained with the policy
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
    problems = [task.train_problem(py_rng) for _ in range(args.prompts_per_step)]
    with amp():
        rollout = generate(model, [encode(q) for q, _ in problems for _ in range(G)], args.max_new_tokens,
                           eos_id=eos_id, pad_id=pad_id, generator=sampler)
    texts = [decode(rollout, i) for i in range(B)]  # rows i*G .. i*G+G-1 answer problem i
    rewards = torch.tensor([math_reward(t, problems[i // G][1]) for i, t in enumerate(texts)], device=device)  # (B,)
    r_hat = group_normalize(rewards, G)  # (B,)
    # mini-batches of whole groups; pi_old and pi_ref of each before any update, same shapes as
    # the training pass, so that on the first mini-batch logp == logp_old bit for bit (w == 1)
    rows = B // args.mini_batches
    parts = [slice(i, i + rows) for i in range(0, B, rows)]
    minis = [rollout[s] for s in parts]  # mini_batches Rollouts of B / mini_batches rows
    with torch.no_grad(), amp():
        old = [token_logprobs(model, mb)[0] for mb in minis]  # (B / mini_batches, N) each
        ref = [token_logprobs(ref_model, mb)[0] for mb in minis]
    logz.train()
    stats = []
    for mb, s, logp_old, logp_ref in zip(minis, parts, old, ref):
        with amp():
            logp, hidden = token_logprobs(model, mb)
        if args.algo == "flowrl":
            log_z = logz(hidden.detach() if args.detach_log_z else hidden, mb.prompt_mask)
            loss, m = flowrl_loss(logp, logp_ref, logp_old, mb.response_mask, r_hat[s], log_z,
                                  beta=args.beta, weight=args.weight)
        else:
            loss, m = grpo_loss(logp, logp_ref, logp_old, mb.response_mask, r_hat[s], kl_coef=args.kl_coef)
        check_finite(loss.item(), "the loss", "rl", step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(params, CLIP)
        check_finite(grad_norm.item(), "the gradient norm", "rl", step)
        opt.step()
        stats.append(dict(m, loss=loss.item(), grad_norm=grad_norm.item()))
    mask = rollout.response_mask
    record = dict(phase="train", stage="rl", step=step, algo=args.algo,
                  reward=rewards.mean().item(), **{k: sum(s[k] for s in stats) / len(stats) for k in stats[0]},
                  grad_norm_max=max(s["grad_norm"] for s in stats),
                  **({"w_mean_first": stats[0]["w_mean"]} if args.algo == "flowrl" else {}),  # 1 exactly
                  sampler_logp_diff=(rollout.logprobs[parts[0]] - old[0]).abs()[mask[parts[0]]].max().item(),
                  response_length=mask.sum(1).float().mean().item(),
                  tokens_per_s=mask.sum().item() / (time.time() - t0))
    if step % args.eval_interval == 0 or step == 1:
        record["sample"] = problems[0][0] + " -> " + texts[0]
    log(record)
    extra = f"  delta {record['delta_abs']:.2f}  log Z {record['log_z']:.2f}" if args.algo == "flowrl" else ""
    print(f"rl step {step}/{args.rl_steps}: reward {record['reward']:.3f}  loss {record['loss']:.4f}{extra}  "
          f"grad {record['grad_norm']:.2f}  len {record['response_length']:.1f}  "
          f"{record['tokens_per_s']:.0f} tok/s", flush=True)
    if step % args.eval_interval == 0 or step == args.rl_steps:
        evaluate("rl", step)
        save_checkpoint("rl", step, opt, logz)
