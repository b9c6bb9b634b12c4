"""
Files of a training run: <out_dir>/metrics.jsonl, <out_dir>/ckpt (the latest checkpoint) and the
reference model, written so that no crash, full disk or Ctrl-C loses what was already written.

A checkpoint is a directory: an HF-format model that transformers loads as it loaded the source
(`save_model`: config.json, model.safetensors, tokenizer.json, and the source's
tokenizer_config.json with its chat template, generation_config.json, special_tokens_map.json),
state.safetensors (the log Z head and the optimizer state) and trainer_state.json (stage, step,
the number of metrics.jsonl lines it covers, the problem stream's RNG, the run's flags, where the
reference model is and its checksum). `save` writes it to ckpt.tmp, then swaps it in by two
renames (ckpt -> ckpt.old, ckpt.tmp -> ckpt), so at every instant a complete checkpoint exists
(ckpt, or ckpt.old between the renames); with --keep K the K - 1 checkpoints before it stay, as
ckpt_<stage>_<step>. `resume_path` finds the latest, and `tidy` puts
the directory back in order before a resumed run writes anything. `save` refuses weights or
optimizer state that are not finite: the last good checkpoint stays. `lock` keeps a second
process off an out_dir that a run is using.

Also load_tokenizer (model.py has the other file helpers). Every error here is a ValueError or
OSError whose message names the file.
"""
import fcntl
import hashlib
import json
import math
import os
import shutil

import torch

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from model import atomic_write, read_json, write_text

CKPT, METRICS, STATE, LOCK = "ckpt", "metrics.jsonl", "trainer_state.json", ".lock"
RUN_FILES = (METRICS, CKPT, CKPT + ".old", CKPT + ".tmp", "exact", "tensorboard")  # what --overwrite deletes
STAGES = ("sft", "rl")  # in the order a run goes through them
EXPLODED = 1e6  # no trained network holds a weight this large (the toy's stay below 2): an update blew up


def check_finite(value, what, stage, step, out_dir):
    """An error naming the value and the last good checkpoint when value is not finite."""
    if not math.isfinite(value):
        stop(f"{what} is {value}", stage, step, out_dir)


def check_finite_state(stage, step, out_dir, **tensors):
    """An error naming the first tensor that holds a NaN or an infinity, or, in the networks
    (model, log_z_head), a weight above EXPLODED, e.g.
    check_finite_state("rl", 5, out_dir, model=model.state_dict(), log_z_head=...)."""
    for group, named in tensors.items():
        for name, t in named.items():
            if not (torch.is_tensor(t) and t.is_floating_point()):
                continue
            if not bool(torch.isfinite(t).all()):
                stop(f"{group} {name} is not finite after the update", stage, step, out_dir)
            if group in ("model", "log_z_head") and (top := t.abs().max().item()) > EXPLODED:
                stop(f"{group} {name} reaches {top:.3g} after the update (above {EXPLODED:g}: the update exploded)",
                     stage, step, out_dir)


def stop(what, stage, step, out_dir):
    ckpt = os.path.join(out_dir, CKPT)
    raise ValueError(f"{stage} step {step}: {what}; stopping. " + (f"The last good checkpoint is kept in {ckpt}"
                     if os.path.isdir(ckpt) else "No checkpoint was written yet"))


class Lock:
    """An exclusive lock on out_dir: the file out_dir/.lock, locked (flock) and naming the process
    that holds it, from before a run touches out_dir until it ends. The kernel releases the lock
    when the process dies, however it dies; a .lock found when taking the lock was left by a
    process that died (`took_over`, its pid). An ended run removes its .lock."""

    def __init__(self, out_dir):
        self.path, self.out_dir, self.made_dir = os.path.join(out_dir, LOCK), out_dir, not os.path.exists(out_dir)
        while True:
            try:
                os.makedirs(out_dir, exist_ok=True)
                self.file = open(self.path, "a+")
            except OSError as e:
                raise OSError(f"{out_dir}: cannot write there ({e.strerror})") from None
            try:
                fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.file.seek(0)
                pid = self.file.read().strip()
                self.file.close()
                raise ValueError(f"{out_dir} is in use by {'process ' + pid if pid else 'another process'} (it "
                                 f"holds {self.path}): wait for it to end, or choose another --out_dir") from None
            if os.path.exists(self.path) and os.path.samefile(self.path, self.file.fileno()):
                break
            self.file.close()  # the run that held it removed the file meanwhile: lock the new one
        self.file.seek(0)
        self.took_over = self.file.read().strip() or None
        self.file.truncate(0)
        self.file.write(f"{os.getpid()}\n")
        self.file.flush()

    def release(self):
        """Remove .lock while still holding it (a process that opened it meanwhile sees it went),
        if it is still this run's; and out_dir if the lock made it and nothing else is there."""
        if os.path.exists(self.path) and os.path.samefile(self.path, self.file.fileno()):
            os.remove(self.path)
        self.file.close()
        if self.made_dir and os.path.isdir(self.out_dir) and not os.listdir(self.out_dir):
            os.rmdir(self.out_dir)  # a run refused before it wrote anything leaves no trace


def load_tokenizer(path):
    """The `tokenizers` Tokenizer from path/tokenizer.json."""
    from tokenizers import Tokenizer
    file = os.path.join(path, "tokenizer.json")
    if not os.path.isfile(file):
        raise FileNotFoundError(f"{file}: not found (the tokenizer is read from tokenizer.json)")
    try:
        return Tokenizer.from_file(file)
    except Exception as e:  # the tokenizers library raises its own exception type
        raise ValueError(f"{file}: not a readable tokenizer ({e})") from None


def save_model(path, model, codec):
    """An HF-format model directory: config.json and the weights, tokenizer.json, and the files of
    codec.chat (training/chat.py), so that AutoTokenizer finds the source's chat template and eos."""
    model.save_pretrained(path)
    codec.tok.save(os.path.join(path, "tokenizer.json"))
    if codec.chat is not None:
        codec.chat.write(path)


def reference(out_dir, ref):
    """The directory of the run's reference model, ref = {"dir": relative to out_dir or absolute,
    "sha256": its checksum once RL has started}; an error if it is missing or has changed."""
    path = os.path.join(out_dir, ref["dir"])
    if not os.path.isdir(path):
        raise ValueError(f"the reference model {path} is missing: if it moved, give its place with --init_from")
    if ref.get("sha256") and checksum(path) != ref["sha256"]:
        raise ValueError(f"the reference model in {path} changed since RL started (its checksum differs)")
    return path


def checksum(model_dir):
    """sha256 over a model directory's config.json and weight files: which reference RL started
    from, so that a resumed run refuses a reference that has changed since."""
    h = hashlib.sha256()
    for name in sorted(os.listdir(model_dir)):
        if name == "config.json" or name.endswith(".safetensors"):
            h.update(name.encode())
            with open(os.path.join(model_dir, name), "rb") as f:
                for block in iter(lambda: f.read(1 << 24), b""):
                    h.update(block)
    return h.hexdigest()


def holds_run(out_dir):
    """Whether out_dir holds an earlier run's metrics, checkpoints or exact numbers."""
    return os.path.isdir(out_dir) and (any(os.path.exists(os.path.join(out_dir, name)) for name in RUN_FILES)
                                       or bool(kept_checkpoints(out_dir)))


def clear(out_dir):
    """Remove an earlier run's metrics and checkpoints (--overwrite), after every check passed."""
    os.makedirs(out_dir, exist_ok=True)
    for name in (*RUN_FILES, *kept_checkpoints(out_dir)):
        remove(os.path.join(out_dir, name))


def resume_path(out_dir):
    """The checkpoint to resume: ckpt, or ckpt.old when a crash came between save's two renames."""
    ckpt = os.path.join(out_dir, CKPT)
    if not os.path.isdir(ckpt) and os.path.isdir(ckpt + ".old"):
        ckpt += ".old"
    if not os.path.isfile(os.path.join(ckpt, STATE)):
        raise ValueError(f"--resume: no checkpoint in {os.path.join(out_dir, CKPT)}")
    return ckpt


def describe(out_dir):
    """One line on the checkpoint that --resume would start from."""
    try:
        ckpt = resume_path(out_dir)
        state = read_json(os.path.join(ckpt, STATE))
        return f"the last checkpoint ({state['stage']} step {state['step']}) is in {ckpt}: continue with --resume"
    except (ValueError, OSError, KeyError, TypeError):
        return "no checkpoint was written yet"


def read_state(ckpt):
    """trainer_state.json and the tensors of state.safetensors, each checked for being whole."""
    state = read_json(os.path.join(ckpt, STATE))
    if isinstance(state, dict) and "ref_dir" in state:  # written before the reference had a checksum
        state["ref"] = {"dir": state.pop("ref_dir")}
    for key in ("stage", "step", "metrics_lines", "py_rng", "args", "opt_groups", "ref"):
        if not isinstance(state, dict) or key not in state:
            raise ValueError(f"{os.path.join(ckpt, STATE)}: field {key!r} is missing")
    if state["stage"] not in STAGES or type(state["step"]) is not int or type(state["metrics_lines"]) is not int:
        raise ValueError(f"{os.path.join(ckpt, STATE)}: stage, step or metrics_lines is not one a run writes")
    file = os.path.join(ckpt, "state.safetensors")
    if not os.path.isfile(file):
        raise FileNotFoundError(f"{file}: not found: the checkpoint is incomplete")
    try:
        tensors = load_file(file)
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{file}: not a readable safetensors file, the checkpoint is damaged ({e})") from None
    return state, tensors


def tidy(out_dir, ckpt, state):
    """Before a resumed run writes: ckpt.old becomes ckpt again if it is the checkpoint, a stale
    ckpt.tmp goes, and metrics.jsonl is made to agree with the checkpoint: of the lines it had
    when the checkpoint was saved, those that are whole JSON rows of a step up to the
    checkpoint's, each step's row once (a torn line, as a crash mid-write leaves it, goes too)."""
    final = os.path.join(out_dir, CKPT)
    if ckpt != final:
        os.replace(ckpt, final)
    remove(final + ".tmp")
    metrics = os.path.join(out_dir, METRICS)
    lines = open(metrics, errors="replace").readlines() if os.path.exists(metrics) else []
    last, kept, seen = (STAGES.index(state["stage"]), state["step"]), [], set()
    for line in lines[:state["metrics_lines"]]:
        try:
            row = json.loads(line)
            key = (row["phase"], row["stage"], row["step"])
            if (STAGES.index(row["stage"]), row["step"]) > last or key in seen:
                continue
        except (ValueError, TypeError, KeyError):  # not a whole row of this run's
            continue
        seen.add(key)
        kept.append(line.rstrip("\n"))
    atomic_write(metrics, lambda f: write_text(f, "\n".join(kept)))
    exact = os.path.join(out_dir, "exact")  # the exact numbers of evaluations past the checkpoint go too
    for name in os.listdir(exact) if os.path.isdir(exact) else []:
        stage, _, step = name.removesuffix(".json").partition("_")
        if stage in STAGES and step.isdigit() and (STAGES.index(stage), int(step)) > last:
            remove(os.path.join(exact, name))


def remove(path):
    """Remove a file, a directory or a symbolic link (not what it points to), if it exists."""
    if os.path.islink(path) or os.path.isfile(path):
        os.remove(path)
    elif os.path.isdir(path):
        shutil.rmtree(path)


def append_metrics(out_dir, record):
    """One JSON line at the end of metrics.jsonl; a failed write (a full disk) names the file."""
    file = os.path.join(out_dir, METRICS)
    try:
        with open(file, "a") as f:
            f.write(json.dumps(record) + "\n")
    except OSError as e:
        raise OSError(f"could not write {file} ({e.strerror}); {describe(out_dir)}") from None


def metrics_lines(out_dir):
    with open(os.path.join(out_dir, METRICS)) as f:
        return sum(1 for _ in f)


def save(out_dir, stage, step, model, codec, opt, log_z_head, py_rng, args, ref):
    """Everything to continue the run (codec: the tokenizer and the source's tokenizer files,
    training/launch.py's Codec). No torch random state is kept: what is random in a step
    is seeded from (seed, step), so a resumed run repeats an uninterrupted one. Under torchrun
    rank 0 alone calls this; the ranks hold the same weights and optimizer state."""
    opt_state = opt.state_dict()
    tensors = {f"opt.{i}.{k}": v for i, s in opt_state["state"].items() for k, v in s.items()}
    if log_z_head is not None:
        tensors.update({f"logz.{k}": v for k, v in log_z_head.state_dict().items()})
    check_finite_state(stage, step, out_dir, model=model.state_dict(), state=tensors)
    state = dict(stage=stage, step=step, metrics_lines=metrics_lines(out_dir), py_rng=py_rng.getstate(),
                 args=vars(args), ref=ref, opt_groups=opt_state["param_groups"])
    write(out_dir, model, codec, tensors, state, args.keep)


def restore(state, tensors, opt, log_z_head, py_rng, device):
    """The optimizer, the log Z head and the problem stream as `save` left them."""
    version, internal, gauss = state["py_rng"]
    py_rng.setstate((version, tuple(internal), gauss))
    if log_z_head is not None:
        log_z_head.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("logz.")})
    per_param = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, i, name = k.split(".", 2)
            per_param.setdefault(int(i), {})[name] = v.to(device) if v.dim() else v
    if state["opt_groups"]:
        opt.load_state_dict({"state": per_param, "param_groups": state["opt_groups"]})


def write(out_dir, model, codec, tensors, state, keep=1):
    """Write a checkpoint to ckpt.tmp and swap it in (module docstring). tensors: name -> tensor
    (state.safetensors); state: a JSON-able dict (trainer_state.json). A failed write (a full
    disk, a file too large, a blocked ckpt.tmp) raises an OSError saying the last good
    checkpoint is kept."""
    final = os.path.join(out_dir, CKPT)
    tmp, old = final + ".tmp", final + ".old"
    try:
        remove(tmp)
        save_model(tmp, model, codec)
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, os.path.join(tmp, "state.safetensors"))
        write_text(os.path.join(tmp, STATE), json.dumps(state))
    except (OSError, SafetensorError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        kept = (f"the last good checkpoint is kept in {final}" if os.path.isdir(final)
                else "no checkpoint was written yet")
        raise OSError(f"could not write a checkpoint to {tmp} ({e}); {kept}") from None
    remove(old)  # left by a crash in an earlier save
    if os.path.isdir(final):  # a directory, or a link to one: the link is renamed, not its target
        os.replace(final, old)
    os.replace(tmp, final)
    if keep > 1 and os.path.isdir(old) and not os.path.islink(old) and os.path.isfile(os.path.join(old, STATE)):
        earlier = read_json(os.path.join(old, STATE))
        remove(os.path.join(out_dir, f"{CKPT}_{earlier['stage']}_{earlier['step']}"))
        os.replace(old, os.path.join(out_dir, f"{CKPT}_{earlier['stage']}_{earlier['step']}"))
    remove(old)
    for name in kept_checkpoints(out_dir)[:-(keep - 1) or None]:  # the oldest beyond keep - 1
        remove(os.path.join(out_dir, name))


def kept_checkpoints(out_dir):
    """The earlier checkpoints that --keep kept, oldest first: ckpt_<stage>_<step> directories."""
    found = []
    for name in os.listdir(out_dir):
        stage, _, step = name[len(CKPT) + 1:].partition("_")
        if name.startswith(CKPT + "_") and stage in STAGES and step.isdigit():
            found.append((STAGES.index(stage), int(step), name))
    return [name for *_, name in sorted(found)]
