"""
Files of a training run: <out_dir>/metrics.jsonl, <out_dir>/ckpt (the latest checkpoint) and the
reference model, written so that no crash, full disk or Ctrl-C loses what was already written.

A checkpoint is a directory: an HF-format model (config.json, model.safetensors), tokenizer.json,
state.safetensors (the log Z head and the optimizer state) and trainer_state.json (stage, step,
the number of metrics.jsonl lines it covers, the problem stream's RNG, the run's flags, where the
reference model is and its checksum). `save` writes it to ckpt.tmp, then swaps it in by two
renames (ckpt -> ckpt.old, ckpt.tmp -> ckpt), so at every instant a complete checkpoint exists
(ckpt, or ckpt.old between the renames); `resume_path` finds whichever it is, and `tidy` puts
the directory back in order before a resumed run writes anything.

Also the small file helpers the project shares: read_json, write_text, atomic_write,
load_tokenizer. Every error here is a ValueError or OSError whose message names the file.
"""
import hashlib
import json
import os
import shutil

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

CKPT, METRICS, STATE = "ckpt", "metrics.jsonl", "trainer_state.json"


def read_json(file):
    try:
        with open(file, encoding="utf-8-sig") as f:  # -sig: a UTF-8 byte-order mark is skipped
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{file}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{file}: not UTF-8 text (byte {e.start})") from None


def write_text(file, text):
    with open(file, "w") as f:
        f.write(text + "\n" if text else "")


def atomic_write(file, write):
    """write(tmp_path), then rename over `file`: a crash mid-write leaves the old file intact."""
    tmp = file + ".tmp"
    write(tmp)
    os.replace(tmp, file)


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
    """Whether out_dir holds an earlier run's metrics or checkpoint."""
    return any(os.path.exists(os.path.join(out_dir, name))
               for name in (METRICS, CKPT, CKPT + ".old", CKPT + ".tmp"))


def clear(out_dir):
    """Remove an earlier run's metrics and checkpoints (--overwrite), after every check passed."""
    os.makedirs(out_dir, exist_ok=True)
    for name in (METRICS, CKPT, CKPT + ".old", CKPT + ".tmp"):
        path = os.path.join(out_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


def resume_path(out_dir):
    """The checkpoint to resume: ckpt, or ckpt.old when a crash came between save's two renames."""
    ckpt = os.path.join(out_dir, CKPT)
    if not os.path.isdir(ckpt) and os.path.isdir(ckpt + ".old"):
        ckpt += ".old"
    if not os.path.isfile(os.path.join(ckpt, STATE)):
        raise ValueError(f"--resume: no checkpoint in {os.path.join(out_dir, CKPT)}")
    return ckpt


def read_state(ckpt):
    """trainer_state.json and the tensors of state.safetensors, each checked for being whole."""
    state = read_json(os.path.join(ckpt, STATE))
    for key in ("stage", "step", "metrics_lines", "py_rng", "args", "opt_groups"):
        if key not in state:
            raise ValueError(f"{os.path.join(ckpt, STATE)}: field {key!r} is missing")
    file = os.path.join(ckpt, "state.safetensors")
    if not os.path.isfile(file):
        raise FileNotFoundError(f"{file}: not found: the checkpoint is incomplete")
    try:
        tensors = load_file(file)
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{file}: not a readable safetensors file, the checkpoint is damaged ({e})") from None
    return state, tensors


def tidy(out_dir, ckpt, metrics_lines):
    """Before a resumed run writes: ckpt.old becomes ckpt again if it is the checkpoint, a stale
    ckpt.tmp goes, and metrics.jsonl loses what was logged after the checkpoint."""
    final = os.path.join(out_dir, CKPT)
    if ckpt != final:
        os.replace(ckpt, final)
    shutil.rmtree(final + ".tmp", ignore_errors=True)
    metrics = os.path.join(out_dir, METRICS)
    lines = open(metrics).readlines() if os.path.exists(metrics) else []
    atomic_write(metrics, lambda f: write_text(f, "".join(lines[:metrics_lines]).rstrip("\n")))


def metrics_lines(out_dir):
    with open(os.path.join(out_dir, METRICS)) as f:
        return sum(1 for _ in f)


def save(out_dir, model, tok, tensors, state):
    """Write a checkpoint to ckpt.tmp and swap it in (module docstring). tensors: name -> tensor
    (state.safetensors); state: a JSON-able dict (trainer_state.json). A failed write (a full
    disk, a file too large, a blocked ckpt.tmp) raises an OSError saying the last good
    checkpoint is kept."""
    final = os.path.join(out_dir, CKPT)
    tmp, old = final + ".tmp", final + ".old"
    try:
        if os.path.lexists(tmp) and not os.path.isdir(tmp):
            os.remove(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tok.save(os.path.join(tmp, "tokenizer.json"))
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, os.path.join(tmp, "state.safetensors"))
        write_text(os.path.join(tmp, STATE), json.dumps(state))
    except (OSError, SafetensorError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        kept = (f"the last good checkpoint is kept in {final}" if os.path.isdir(final)
                else "no checkpoint was written yet")
        raise OSError(f"could not write a checkpoint to {tmp} ({e}); {kept}") from None
    shutil.rmtree(old, ignore_errors=True)  # left by a crash in an earlier save
    if os.path.isdir(final):
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
