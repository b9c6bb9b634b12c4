"""
Train a language model with FlowRL (or the GRPO baseline) on math problems.

    python train.py                      # built-in toy task, CPU, a few minutes: SFT then RL
    python train.py --algo grpo --out_dir out/grpo           # the same run with GRPO
    python train.py --resume             # continue a stopped run from <out_dir>/ckpt
    python train.py --overwrite          # start afresh in an out_dir that holds a run
    python train.py --init_from out/sft --out_dir out/rl2    # RL only, from a saved model
    python train.py --task countdown --out_dir out/countdown # toy Countdown, from scratch
    torchrun --standalone --nproc_per_node=2 train.py        # 2 processes (GPUs, or CPU with gloo)
    python train.py --init_from ~/Qwen2.5-0.5B-Instruct --data gsm8k.jsonl --device cuda --lr 1e-6
                                         # prompts through the checkpoint's chat template

main() reads top-down: flags, processes and device, then the model, tokenizer and task (and the
checkpoint on --resume), all checked before out_dir is touched; stage 1, SFT (a model trained
from scratch imitates its toy task's teacher, whose demonstrations are spread uniformly over the
correct paths, so RL starts from a diverse, imperfect policy; or --sft_data's pairs); stage 2,
RL, one step being

    rollout, texts, rewards = sample_step(...)   prompts_per_step prompts x group_size responses
    metrics = rl_update(d, args, net, ...)       pi_old, pi_ref, then per mini-batch the loss (the
                                                 one place FlowRL meets the loop) and an optimizer step
    evaluate(...), save_checkpoint(...)          every eval_interval (save_interval) steps

It writes <out_dir>/metrics.jsonl, <out_dir>/sft (the SFT model, pi_ref) and <out_dir>/ckpt (the
latest checkpoint, training/checkpoint.py), and returns the trained model and log Z head.

Where this follows the official FlowRL recipe and where it departs (toy scale):
- as official: group size 8, beta 15, the capped importance weight, log Z not detached, AdamW
  with weight decay 0.1, warm-up then a constant lr, grad-norm clip 1.0, rollout temperature 1.0,
  one rollout split into mini-batches (one optimizer step each, later ones off-policy: w != 1).
- lr 1e-4 instead of 1e-6 (a 1M-parameter model, not 7B); 16 prompts a step instead of 512.
- pi_old is a teacher-forced pass over each mini-batch before any update, so the first
  mini-batch has w == 1 exactly; the sampler's own log-probs are logged against it
  (sampler_logp_diff), a check that sampling and training see the same distribution.
- evaluation samples 8 completions per prompt at temperature 1.0 (the paper: 16 at 0.6).

Under torchrun each rank samples a disjoint share of every step's prompts, each response from its
own generator seeded by (seed, step, its index in the whole batch), so a run samples the same
responses on any number of processes; DistributedDataParallel averages the gradients, and each
rank's loss is scaled so that the update is that of the union (UnionMean). Rank 0
alone prints, evaluates and writes files.
"""
import math
import os
import random
import signal
import sys
import time
from dataclasses import dataclass

import torch
import torch.distributed as dist
from safetensors import SafetensorError

from flowrl import LogZHead, flowrl_loss, grpo_loss, reward_target
from reward import rewards_of
from sample import generate, rollout_of, token_logprobs
from training import checkpoint, monitor
from training.checkpoint import check_finite
from training.evaluate import evaluate, toy_paths
from training.monitor import rollout_stats, token_stats
from training.flags import check_flags, parse_args, resume_args
from training.launch import (load_model, load_reference, load_task, reference_of, seed_of, setup_processes, sft_data,
                             Terminated, terminate)

CLIP = 1.0          # grad-norm clip (official)
WARMUP = 10         # RL warm-up steps (official), then a constant lr
SFT_WARMUP = 30     # SFT: linear warm-up steps, then cosine decay ...
SFT_FLOOR = 0.1     # ... to this fraction of --sft_lr
SFT_SAVE_EVERY = 200  # SFT steps between checkpoints
SFT_LOG_EVERY = 25
BAD_INPUT = (ValueError, OSError, SafetensorError)  # reported as one line naming file and problem


def log(d, args, board, record):
    """A metrics row (rank 0's; None on the other ranks) to metrics.jsonl, and to TensorBoard."""
    if d.rank == 0 and record:
        checkpoint.append_metrics(args.out_dir, record)
        board.add(record)


def progress_line(args, r):
    """An RL step's record, compactly: reward (its std), loss, FlowRL's |delta| and log Z or GRPO's
    clip fraction, entropy, KL to pi_ref, grad norm, length (the fraction cut), speed."""
    algo = (f"|delta| {r['delta_abs']:.2f}  log Z {r['log_z']:.2f}" if args.algo == "flowrl"
            else f"clip {r['clip_frac']:.3f}")
    return (f"rl step {r['step']}/{args.rl_steps}: reward {r['reward']:.3f} ({r['reward_std']:.2f})  "
            f"loss {r['loss']:.4f}  {algo}  H {r['entropy']:.3f}  KL {r['kl_ref']:.4f}  grad {r['grad_norm']:.2f}  "
            f"len {r['response_length']:.1f} ({r['truncated']:.0%} cut)  {r['step_s']:.1f} s/step  "
            f"{r['tokens_per_s']:.0f} tok/s  MFU {r['mfu']:.1%}  ETA {r['eta_s'] / 60:.1f} min")


def save_checkpoint(d, args, stage, step, model, codec, opt, log_z_head, py_rng, ref):
    if d.rank == 0:  # the ranks hold the same weights and optimizer state
        checkpoint.save(args.out_dir, stage, step, model, codec, opt, log_z_head, py_rng, args, ref)


def sft_step(d, args, model, model_ddp, opt, codec, demos, py_rng, step):
    """One step of cross-entropy on demonstrations: a toy task's teacher, or --sft_data's pairs
    (demos: train_problem(rng) and demonstration(problem, rng, slip)). Returns (loss, grad_norm, lr)."""
    decay = (1 + SFT_FLOOR) / 2 + (1 - SFT_FLOOR) / 2 * math.cos(math.pi * step / args.sft_steps)
    lr = args.sft_lr * min(1.0, step / SFT_WARMUP) * decay
    for group in opt.param_groups:
        group["lr"] = lr
    problems = [demos.train_problem(py_rng) for _ in range(args.sft_batch)]
    completions = [demos.demonstration(p, py_rng, args.sft_slip) for p in problems]
    responses = [codec.tok.encode(c, add_special_tokens=False).ids + [codec.end_id()] for c in completions]
    batch = rollout_of([codec.encode(q) for q, _ in problems], responses, codec.pad_id, codec.eos_id, d.device)
    n_union = batch.response_mask.sum()  # completion tokens of the whole batch
    mine = batch[d.rank::d.world]  # this rank's rows, in passes of --micro_batch rows (0: one pass)
    rows, loss_sum = args.micro_batch or len(mine.response_ids), 0.0
    opt.zero_grad(set_to_none=True)
    for i in range(0, len(mine.response_ids), rows):
        with d.amp():
            logp = token_logprobs(model_ddp, mine[i:i + rows]).logp
        loss = -logp.sum() / n_union  # this pass's share of the cross-entropy on the completion tokens
        (loss * d.world).backward()  # DDP averages the gradients over the ranks: x world sums the shares
        loss_sum += loss.item()
    loss_union = d.all_reduce([loss_sum])[0]
    check_finite(loss_union, "the SFT loss", "sft", step, args.out_dir)  # before the step: the weights stay good
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
    opt.step()
    return loss_union, grad_norm.item(), lr


def sample_step(d, args, sampler, codec, task, problems, step):
    """This rank's share of the step's rollout: group_size responses to each of its prompts,
    decoded and scored by the task's reward. Every rank draws the same problems and keeps every
    world-th one: rank r answers prompts r, r + world, ..., so mini-batch j over all ranks holds
    the prompts of a single process's mini-batch j. Each response samples from a generator seeded
    by its index in the whole batch. Returns (rollout, texts, rewards (B,))."""
    G = args.group_size
    mine = [problems[i] for i in range(d.rank, len(problems), d.world)]
    index = [i * G + g for i in range(d.rank, len(problems), d.world) for g in range(G)]
    generators = [torch.Generator(d.device).manual_seed(seed_of(args.seed, step, 0, i)) for i in index]
    with d.amp():
        rollout = generate(sampler, [codec.encode(q) for q, _ in mine for _ in range(G)], args.max_new_tokens,
                           eos_id=codec.eos_id, pad_id=codec.pad_id, generator=generators, **sampling(args))
    texts = [codec.decode(rollout, i) for i in range(len(index))]  # rows i*G .. i*G+G-1 answer mine[i]
    unknown = int((rollout.response_ids[rollout.response_mask] >= codec.tok.get_vocab_size()).sum())
    if unknown:  # ids past the tokenizer's, a model's padding rows of the embedding: decoded as nothing
        d.info(f"rl step {step}: {unknown} sampled tokens have ids the tokenizer cannot decode "
               f"(>= {codec.tok.get_vocab_size()}); the reward reads the text without them")
    rewards = torch.tensor(rewards_of(task.reward, texts, [mine[i // G][1] for i in range(len(texts))]), device=d.device)
    return rollout, texts, rewards


def sampling(args):
    """The rollouts' distribution. RL's log-probs (pi_theta, pi_old, pi_ref) are taken at the same
    temperature but without top-k / top-p: a truncated distribution gives a token outside it
    log-prob -inf, and pi_ref, or pi_theta after an update, puts sampled tokens there."""
    return dict(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)


@dataclass
class Learner:
    """What RL trains and reads. Under torchrun the policy and log Z head train through their DDP
    wrappers (*_ddp), which average the gradients over the ranks; the rest uses the bare modules."""
    model: torch.nn.Module           # pi_theta
    model_ddp: torch.nn.Module       # pi_theta as trained
    ref: torch.nn.Module             # pi_ref, frozen
    log_z_head: LogZHead
    log_z_head_ddp: torch.nn.Module  # the log Z head as trained
    opt: torch.optim.Optimizer       # AdamW over params

    @property
    def params(self):  # what the optimizer trains: the policy's parameters, then the log Z head's
        return [p for group in self.opt.param_groups for p in group["params"]]


def rl_update(d, args, net, rollout, rewards, step):
    """FlowRL (or GRPO) on one rollout: pi_old and pi_ref first, then mini_batches optimizer steps,
    each over passes of at most micro_batch rows. Returns the step's metrics, over all ranks."""
    r_hat = reward_target(rewards, args.group_size, args.reward_norm)  # (B,) group z-scores; each rank holds whole groups
    minis = split_rows(len(rewards), args.mini_batches, args.micro_batch)  # minis[j]: mini-batch j's passes
    # 1) pi_old and pi_ref before any update, pass by pass, in the shapes of the training passes,
    #    so that on the first mini-batch logp == logp_old bit for bit (w == 1)
    with torch.no_grad(), d.amp():
        pi_old = [[token_logprobs(net.model, rollout[rows], entropy=True, temperature=args.temperature)
                   for rows in mini] for mini in minis]  # .entropy: a monitor
        logp_ref = [[token_logprobs(net.ref, rollout[rows], temperature=args.temperature).logp for rows in mini]
                    for mini in minis]
    logp_old = [[out.logp for out in mini] for mini in pi_old]
    net.log_z_head.train()
    torch.manual_seed(seed_of(args.seed, step, 1, d.rank))  # the log Z head's dropout, per rank and step
    steps = []
    for mini, mini_old, mini_ref in zip(minis, logp_old, logp_ref):
        # 2) each pass: the policy's log-probs, log Z, the loss, backward (gradients add up in .grad)
        union = UnionMean(d, rollout, mini, per_token=args.algo == "grpo")
        net.opt.zero_grad(set_to_none=True)
        for rows, old, ref in zip(mini, mini_old, mini_ref):
            mb = rollout[rows]
            with d.amp():
                out = token_logprobs(net.model_ddp, mb, temperature=args.temperature)  # .logp (rows, N) with grad, .hidden (rows, P, H)
            if args.algo == "flowrl":
                hidden = out.hidden.detach() if args.detach_log_z else out.hidden
                log_z = net.log_z_head_ddp(hidden, mb.prompt_mask) if args.log_z == "head" else args.log_z  # (rows,)
                loss, m = flowrl_loss(logp=out.logp, logp_ref=ref, logp_old=old, mask=mb.response_mask,
                                      r_hat=r_hat[rows], log_z=log_z, beta=args.beta, weight=args.weight,
                                      logp_norm=args.logp_norm, group_size=args.group_size)
            else:
                loss, m = grpo_loss(logp=out.logp, logp_ref=ref, logp_old=old, mask=mb.response_mask,
                                    adv=r_hat[rows], kl_coef=args.kl_coef)
            union.backward(rows, loss, m)
        # 3) one optimizer step on the gradient of the union's loss
        m = union.means()  # the union's loss and metrics
        check_finite(m["loss"], "the loss", "rl", step, args.out_dir)
        grad_norm = torch.nn.utils.clip_grad_norm_(net.params, CLIP).item()  # of the averaged gradient
        check_finite(grad_norm, "the gradient norm", "rl", step, args.out_dir)
        net.opt.step()
        steps.append(dict(m, grad_norm=grad_norm))
    flat = lambda passes: torch.cat([t for mini in passes for t in mini])  # noqa: E731  (B, N), rows in order
    return dict(step_metrics(d, rollout, steps, first_old=torch.cat(logp_old[0]), flowrl=args.algo == "flowrl"),
                **token_stats(d, rollout.response_mask, logp=flat(logp_old), logp_ref=flat(logp_ref),
                              entropy=flat([[out.entropy for out in mini] for mini in pi_old])))


def split_rows(B, mini_batches, micro_batch):
    """The row slices of every pass, by mini-batch: mini_batches runs of B / mini_batches rows
    (whole groups; one optimizer step each), each cut into passes of micro_batch rows (0: one)."""
    rows = B // mini_batches
    micro = min(micro_batch or rows, rows)
    return [[slice(j, min(j + micro, i + rows)) for j in range(i, i + rows, micro)] for i in range(0, B, rows)]


class UnionMean:
    """A mini-batch's loss and metrics as means over the units of the union of its passes on all
    ranks: responses (FlowRL) or response tokens (per_token, GRPO). backward gives each pass's
    loss its share of the union's mean; means() reduces the metrics, weighted alike."""

    def __init__(self, d, rollout, mini, per_token):
        self.d, self.rollout, self.per_token, self.sums = d, rollout, per_token, {}
        self.n_union = d.all_reduce([sum(self.units(rows) for rows in mini)])[0]

    def units(self, rows):
        return self.rollout.response_mask[rows].sum().item() if self.per_token else float(rows.stop - rows.start)

    def backward(self, rows, loss, metrics):
        # The union's loss is the mean over its n_union units; this pass's mean over its n units
        # times n / n_union is its share of it. DDP averages the gradients (divides their sum by
        # world), so the loss to backward is world * n / n_union times this pass's loss: 1 for
        # a single pass in a single process.
        n = self.units(rows)
        (loss * (self.d.world * n / self.n_union)).backward()
        for k, v in dict(loss=loss.item(), **metrics).items():
            self.sums[k] = self.sums[k] + n * v if k in self.sums else n * v

    def means(self):
        return dict(zip(self.sums, (v / self.n_union for v in self.d.all_reduce(list(self.sums.values())))))


def step_metrics(d, rollout, steps, first_old, flowrl):
    """The optimizer steps' loss and metrics, averaged over them (grad_norm_max: the largest);
    sampler_logp_diff, the largest gap between the sampler's log-probs and pi_old's on the first
    mini-batch (0 up to float rounding: sampling and training see one distribution)."""
    mask, first = rollout.response_mask, slice(0, len(first_old))
    drift = (rollout.logprobs[first] - first_old).abs()[mask[first]].max().item()
    return dict(**{k: sum(s[k] for s in steps) / len(steps) for k in steps[0]},
                grad_norm_max=max(s["grad_norm"] for s in steps),
                **({"w_mean_first": steps[0]["w_mean"]} if flowrl else {}),  # 1 exactly
                sampler_logp_diff=d.all_reduce([drift], op="max")[0])


def main(argv=None):
    """train.py as a function (main(["--rl_steps", "5"])): returns (model, log_z_head)."""
    args, stage, step, lock = None, "setup", 0, None
    try:
        # 1) flags; out_dir locked against a second process; on --resume the run's own flags, and
        #    its checkpoint, read before anything else
        args, given = parse_args(argv)
        lock = checkpoint.Lock(args.out_dir) if int(os.environ.get("RANK", 0)) == 0 else None
        if lock and lock.took_over:
            print(f"{args.out_dir}: taking over the lock of process {lock.took_over}, which is not running", flush=True)
        state = tensors = ckpt = None
        changed = {}  # flags that --resume takes from the command line
        if args.resume:
            ckpt = checkpoint.resume_path(args.out_dir)
            state, tensors = checkpoint.read_state(ckpt)
            args, changed = resume_args(args, given, state["args"])
        # 2) processes and device
        d = setup_processes(args.device)
        check_flags(args, d.world, set() if args.resume else given)
        if state:
            finished = state["stage"] == "rl" and state["step"] >= args.rl_steps
            d.info(f"resuming {ckpt} at {state['stage']} step {state['step']}"
                   + (", with " + ", ".join(f"--{k} {v}" for k, v in sorted(changed.items())) if changed else "")
                   + (": the run is finished, a larger --rl_steps continues it" if finished else ""))
        # 3) model, tokenizer, task, reference: all loaded before out_dir is touched
        torch.manual_seed(args.seed)  # the toy model's initial weights, the same on every rank
        py_rng = random.Random(args.seed)  # problems and SFT demonstrations, the same on every rank
        model, codec = load_model(args, ckpt or args.init_from, d.device)
        task = load_task(args, codec, model.config.max_seq_len)
        demos = sft_data(args, task, codec, model.config.max_seq_len)  # None: RL from the loaded model
        stage, start = (state["stage"], state["step"]) if state else ("sft" if demos else "rl", 0)
        ref = reference_of(args, state, changed)
        ref_model = load_reference(args, ref, d.device) if stage == "rl" else None
        # the policy as trained: under torchrun wrapped in DDP, which averages the gradients (Learner)
        model_ddp = torch.nn.parallel.DistributedDataParallel(model) if d.world > 1 else model
        model.grad_ckpt = args.grad_ckpt  # activation checkpointing in the training passes (model.py)
        # sampling and evaluation may decode with a compiled copy: the same weights, the same samples
        sampler = torch.compile(model, dynamic=True) if args.compile else model
        if stage == "sft":
            opt = torch.optim.AdamW(model.parameters(), lr=args.sft_lr, weight_decay=0.1)
            if state:
                checkpoint.restore(state, tensors, opt, None, py_rng, d.device)
        # 4) only now out_dir: a resumed run is tidied, an earlier run deleted (--overwrite)
        if d.rank == 0:
            checkpoint.tidy(args.out_dir, ckpt, state) if state else checkpoint.clear(args.out_dir)
        d.barrier()
        d.info(f"{sum(p.numel() for p in model.parameters()):,} parameters on {d.device}"
               f"{f' x {d.world} processes' if d.world > 1 else ''}; "
               f"{task.describe}; out_dir {args.out_dir}")
        board = monitor.Board(args.out_dir, args.tensorboard and d.rank == 0, state and f"{state['stage']}_{state['step']}")
        peak, peak_text = monitor.peak_rate(d.device)  # what MFU is measured against
        d.info(f"MFU against {peak_text}")

        # 5) stage 1: SFT on demonstrations (a toy task's teacher, or --sft_data)
        if stage == "sft":
            t0 = time.time()
            for step in range(start + 1, args.sft_steps + 1):
                loss, grad_norm, lr = sft_step(d, args, model, model_ddp, opt, codec, demos, py_rng, step)
                if step % SFT_LOG_EVERY == 0 or step == args.sft_steps:
                    log(d, args, board, dict(phase="train", stage="sft", step=step, loss=loss, grad_norm=grad_norm, lr=lr))
                    d.info(f"sft step {step}/{args.sft_steps}: loss {loss:.4f}  {time.time() - t0:.0f}s")
                if step % SFT_SAVE_EVERY == 0 and step < args.sft_steps:
                    save_checkpoint(d, args, "sft", step, model, codec, opt, None, py_rng, ref)
            checkpoint.check_finite_state("sft", args.sft_steps, args.out_dir, model=model.state_dict())
            log(d, args, board, evaluate(d, args, model, sampler, codec, task, "sft", args.sft_steps))
            if d.rank == 0:
                checkpoint.save_model(os.path.join(args.out_dir, ref["dir"]), model, codec)  # the start of RL, and pi_ref
            d.barrier()  # every rank reads pi_ref next
            stage, start, state = "rl", 0, None
            ref_model = load_reference(args, ref, d.device)

        # 6) stage 2: RL
        torch.manual_seed(args.seed)  # the log Z head's initial weights depend on the seed alone
        log_z_head = LogZHead(model.config.n_embd, dropout=args.logz_dropout).to(d.device)  # float32
        log_z_head_ddp = (torch.nn.parallel.DistributedDataParallel(log_z_head)
                          if d.world > 1 and args.algo == "flowrl" else log_z_head)
        params = list(model.parameters()) + list(log_z_head.parameters())
        opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.1)  # trains log Z with the policy
        net = Learner(model, model_ddp, ref_model, log_z_head, log_z_head_ddp, opt)
        speed = monitor.Speed(monitor.multiplying_params(model), peak * d.world, start + 1, args.rl_steps, args.grad_ckpt)
        paths_ref = toy_paths(ref_model, codec, task, d.device) if d.rank == 0 else None  # once: pi_ref is fixed
        if state:
            checkpoint.restore(state, tensors, opt, log_z_head, py_rng, d.device)
        else:
            if not demos:
                log(d, args, board, evaluate(d, args, model, sampler, codec, task, "rl", 0, paths_ref))  # the start
            ref["sha256"] = checkpoint.checksum(os.path.join(args.out_dir, ref["dir"]))
            save_checkpoint(d, args, "rl", 0, model, codec, opt, log_z_head, py_rng, ref)  # --resume starts here
        for step in range(start + 1, args.rl_steps + 1):
            t0 = time.time()
            for group in opt.param_groups:
                group["lr"] = args.lr * min(1.0, step / WARMUP)
            problems = [task.train_problem(py_rng) for _ in range(args.prompts_per_step)]
            rollout, texts, rewards = sample_step(d, args, sampler, codec, task, problems, step)
            stats = rollout_stats(d, rollout, rewards, args.group_size, args.max_new_tokens, codec.eos_id)
            metrics = rl_update(d, args, net, rollout, rewards, step)
            seconds, n_tokens = time.time() - t0, stats.pop("n_tokens")
            all_tokens = stats.pop("n_prompt_tokens") + n_tokens
            record = dict(phase="train", stage="rl", step=step, algo=args.algo, **stats, **metrics,
                          lr=opt.param_groups[0]["lr"], tokens_per_s=n_tokens / seconds,
                          **speed.step(step, seconds, all_tokens))
            if step % args.eval_interval == 0 or step == 1:
                record["sample"] = problems[0][0] + " -> " + texts[0]
            log(d, args, board, record)
            d.info(progress_line(args, record))
            evaluating = step % args.eval_interval == 0 or step == args.rl_steps
            saving = step % (args.save_interval or args.eval_interval) == 0 or step == args.rl_steps
            if evaluating or saving:  # a non-finite update stops the run here
                checkpoint.check_finite_state("rl", step, args.out_dir, model=model.state_dict(),
                                              log_z_head=log_z_head.state_dict())
            if evaluating:
                log(d, args, board, evaluate(d, args, model, sampler, codec, task, "rl", step, paths_ref))
            if saving:
                save_checkpoint(d, args, "rl", step, model, codec, opt, log_z_head, py_rng, ref)
        if d.world > 1:
            dist.destroy_process_group()
        return model, log_z_head
    except BAD_INPUT as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM: one line, and the exit status a shell gives
        signum = signal.SIGTERM if isinstance(e, Terminated) else signal.SIGINT
        print(f"{'terminated' if signum == signal.SIGTERM else 'interrupted'} at {stage} step {step}"
              + (f"; {checkpoint.describe(args.out_dir)}" if args else ""), file=sys.stderr)
        sys.exit(128 + signum)
    finally:
        if lock:
            lock.release()


if __name__ == "__main__":
    if int(os.environ.get("WORLD_SIZE", 1)) == 1:  # under torchrun, SIGTERM is how it stops its processes
        signal.signal(signal.SIGTERM, terminate)  # `kill` ends a run as Ctrl-C does
    model, log_z_head = main()  # left in the session by `python -i train.py ...`
