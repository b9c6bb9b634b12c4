"""
What train.py settles before it trains, once its flags are read (training/flags.py): its
processes and device, and the model, tokenizer, task and reference model it loads. Nothing here
writes to out_dir: train.py touches it only once all of this has passed.

Processes: torchrun sets RANK and WORLD_SIZE; a plain `python train.py` is rank 0 of a world of 1.
`Dist` carries what is fixed once the processes are up: rank, world, device, and the few
collective helpers train.py uses.

Loading: `Codec` is the tokenizer with the prompt template (questions to ids, responses to text);
every file problem is an error naming the file (training/checkpoint.py, model.py, tasks/).
"""
import contextlib
import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from training import checkpoint
from training.chat import Chat, read_chat
from training.checkpoint import load_tokenizer
from model import ModelConfig, Transformer
from sample import eos_ids
from reward import load_reward
from tasks.countdown import CountdownTask
from tasks.countdown import question as countdown_question
from tasks.countdown_toy import ToyCountdownTask, toy_countdown_tokenizer
from tasks.jsonl import FileTask, SftData
from tasks.sums import EOS, PAD, TOY_MODEL, ToyTask, train_toy_tokenizer
from training.flags import task_name


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
    """The tokenizer and the prompt template: questions to token ids, responses back to text.
    template None: the checkpoint's chat template (training/chat.py) builds the prompt."""
    tok: object
    template: str
    eos_id: object  # an id, or a list of ids
    pad_id: int
    chat: Chat = None  # the source's chat template and tokenizer files, saved with every checkpoint

    def encode(self, question):
        if self.template is None:  # as transformers' apply_chat_template: the template wrote the special tokens
            return self.tok.encode(self.chat.render(question), add_special_tokens=False).ids
        return self.tok.encode(self.template.replace("{question}", question)).ids

    def end_id(self):
        """The token a demonstration ends with: the tokenizer's eos_token when it is a stop id
        (Llama 3 Instruct's <|eot_id|>, which ends its chat turns), else the first stop id."""
        ids = eos_ids(self.eos_id)
        named = self.tok.token_to_id(self.chat.special["eos_token"]) if self.chat and "eos_token" in self.chat.special else None
        return named if named in ids else ids[0]

    def decode(self, rollout, i):
        n = int(rollout.response_mask[i].sum())
        return self.tok.decode(rollout.response_ids[i, :n].tolist())


def load_model(args, source, device):
    """The model and its codec: from a checkpoint directory (HF format with tokenizer.json), or
    a new toy model with the toy task's character tokenizer when source is None."""
    if source is None:
        tok = toy_countdown_tokenizer() if task_name(args) == "countdown" else train_toy_tokenizer()
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
    chat = read_chat(source) if source is not None else Chat()
    # config.json's eos, then generation_config.json's, which may name more: generate stops at any
    # (Qwen2.5-Instruct's generation_config.json names <|im_end|> and <|endoftext|>)
    first = model.config.eos_token_id if model.config.eos_token_id is not None else tok.token_to_id(EOS)
    eos = list(dict.fromkeys(eos_ids(first) + chat.eos_ids))
    eos_id = eos[0] if len(eos) == 1 else eos or None
    pad_id = tok.token_to_id(PAD)  # masks come from positions, so padding with an EOS id is fine too
    pad_id = pad_id if pad_id is not None else eos_ids(eos_id)[0]
    chat.add_missing(tok, eos, pad_id)
    template = args.prompt_template  # None: the checkpoint's chat template, if it has one
    if template is None and chat.template is None:
        template = "{question}\n"
    elif template is not None and chat.template is not None and int(os.environ.get("RANK", 0)) == 0:
        print(f"the chat template of {chat.template_file} is not used: prompts follow --prompt_template", flush=True)
    return model, Codec(tok, template, eos_id, pad_id, chat)


def prompt_check(codec, max_new_tokens, max_seq_len):
    """too_long(question): why the question's prompt and max_new_tokens do not fit the model's
    context, or None. A prompt of b UTF-8 bytes has at least b / longest tokens (longest: the
    longest token's characters, bytes for byte-level BPE as Qwen's and Llama 3's; a tokenizer that
    drops text or maps it to <unk> can have fewer), so a question far too long for the context is
    refused before the tokenizer spends minutes on it."""
    longest = max(map(len, codec.tok.get_vocab()))

    def too_long(question):
        n_bytes = len(question.encode("utf-8"))
        if n_bytes > longest * max_seq_len:
            return (f"the question is {n_bytes:,} bytes, at least {n_bytes // longest:,} tokens: more than the "
                    f"model's context of {max_seq_len} tokens")
        n = len(codec.encode(question))
        if n + max_new_tokens > max_seq_len:
            return (f"the prompt is {n} tokens; with --max_new_tokens {max_new_tokens} that exceeds "
                    f"the model's context of {max_seq_len} tokens")
    return too_long


def load_task(args, codec, max_seq_len):
    too_long = prompt_check(codec, args.max_new_tokens, max_seq_len)
    name = task_name(args)
    if name == "math":
        task = FileTask(args.data, args.eval_prompts, too_long, args.eval_data)
    elif name == "countdown" and args.countdown_format == "derivation":
        task = ToyCountdownTask(args.eval_prompts, args.format_score, args.countdown_numbers, args.countdown_max,
                                args.countdown_target_max)
        if too_long(task.longest):
            raise ValueError(f"toy countdown: {too_long(task.longest)}")
    elif name == "countdown":
        task = CountdownTask(args.eval_prompts, args.data, args.countdown_numbers, args.countdown_max,
                             args.countdown_target_max, args.format_score, args.eval_data)
        widest = countdown_question([args.countdown_max] * args.countdown_numbers, args.countdown_target_max)
        for q in [widest] if task.train_set is None else [q for q, _ in task.eval_set + task.train_set]:
            if too_long(q):  # a model trained on the toy's derivations has a toy's context
                raise ValueError(f"countdown: {too_long(q)} (a model trained on toy Countdown needs "
                                 f"--countdown_format derivation)")
    else:
        if too_long(ToyTask.LONGEST):
            raise ValueError(f"toy task: {too_long(ToyTask.LONGEST)}")
        task = ToyTask(args.eval_prompts)
    if args.reward:
        task.reward = load_reward(args.reward)
    return task


def sft_data(args, task, codec, max_seq_len):
    """What SFT imitates: --sft_data's pairs, or the toy task's own teacher; None: no SFT stage
    (a loaded model without --sft_data starts with RL). A pair that does not fit the model's
    context, or holds text its tokenizer maps to <unk>, is an error naming the line."""
    if not args.sft_data:
        return task if not args.init_from else None
    unk, longest = codec.tok.token_to_id("<unk>"), max(map(len, codec.tok.get_vocab()))

    def unfit(prompt, completion):
        if len((prompt + completion).encode("utf-8")) > longest * max_seq_len:  # too long, told before tokenizing
            return f"longer than the model's context of {max_seq_len} tokens"
        target = codec.tok.encode(completion, add_special_tokens=False).ids  # what SFT teaches
        if unk is not None and unk in target:
            return "the completion holds characters the tokenizer does not know (<unk>)"
        ids = codec.encode(prompt) + target
        if len(ids) + 1 > max_seq_len:
            return f"prompt, completion and end token are {len(ids) + 1} tokens: more than the model's context of {max_seq_len}"
    return SftData(args.sft_data, unfit)


def reference_of(args, state, changed):
    """Where pi_ref is: {"dir": relative to out_dir (a toy run's sft/) or absolute (--init_from),
    "sha256": its checksum once RL has started}. On --resume it is the saved run's, unless
    --init_from names where an RL-only run's reference moved to."""
    if not state:
        sft_runs = args.sft_data or not args.init_from
        return {"dir": "sft" if sft_runs else os.path.abspath(args.init_from)}
    ref = dict(state["ref"])
    if "init_from" in changed:
        if state["stage"] != "rl" or not os.path.isabs(ref["dir"]):  # the run's own sft/ (toy, --sft_data)
            raise ValueError("--resume --init_from names where the reference of an RL-only run moved; "
                             "this run's reference is its own sft/")
        ref["dir"] = os.path.abspath(args.init_from)
    return ref


def load_reference(args, ref, device):
    """pi_ref, frozen; on cuda held in bf16 (it is never trained). Refused if it changed."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    path = checkpoint.reference(args.out_dir, ref)
    return Transformer.from_pretrained(path, dtype, device).eval().requires_grad_(False)
