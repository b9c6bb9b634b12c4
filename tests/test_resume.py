"""A run is never lost: train.main refuses what would overwrite or silently change a run, reports
bad input, full disks and Ctrl-C in one line, and --resume after a SIGKILL at any point (inside
SFT, inside RL, inside a checkpoint save) ends with the metrics of an uninterrupted run.

Most tests call train.main in this process (it returns the model, or raises SystemExit with the
one-line message); the SIGKILL test runs train.py in subprocesses."""
import errno
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
import torch

import train
from conftest import ROOT, TIMING, TINY, snapshot
from flowrl import LogZHead
from model import ModelConfig, Transformer
from tasks.jsonl import read_jsonl
from training import checkpoint


def fails(argv):
    """The one-line message of a train.main that must stop."""
    with pytest.raises(SystemExit) as e:
        train.main(argv)
    return str(e.value.code)


def records(out):
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in f]


def test_main_returns_the_trained_model_and_log_z_head(finished, tmp_path):
    model, log_z_head = train.main(["--out_dir", str(tmp_path / "again"), *TINY])
    saved = Transformer.from_pretrained(os.path.join(finished, "ckpt"))
    for k, v in saved.state_dict().items():
        assert torch.equal(v, model.state_dict()[k]), k  # the same run, deterministic
    assert isinstance(log_z_head, LogZHead)


@pytest.mark.parametrize("flags, message", [
    ([], "holds a run: continue it with --resume, or delete it with --overwrite"),
    (["--lr", "-1"], "--lr -1.0 / --sft_lr 0.002: learning rates must be positive"),
    (["--group_size", "1", "--prompts_per_step", "2"], "--group_size 1: every r_hat of a group of one is 0"),
    (["--beta", "0"], "--beta 0.0: must be positive"),
    (["--device", "tpu9"], "--device tpu9: not a device"),
    (["--resume", "--overwrite"], "--resume continues the run in out_dir, --overwrite deletes it: give one"),
])
def test_a_run_in_out_dir_survives_any_refused_command(run, flags, message):
    before = snapshot(run)
    error = fails(["--out_dir", run, *TINY, *flags])
    assert error.startswith("error: ") and message in error and "\n" not in error
    assert snapshot(run) == before


def test_init_from_the_run_it_would_delete_is_refused(run):
    before = snapshot(run)
    ckpt = os.path.join(run, "ckpt")
    assert "holds a run" in fails(["--out_dir", run, "--init_from", ckpt, "--rl_steps", "1"])
    assert "lies in the run that --overwrite would delete" in fails(
        ["--out_dir", run, "--init_from", ckpt, "--rl_steps", "1", "--overwrite"])
    assert snapshot(run) == before


def test_a_bad_data_line_aimed_at_a_run_keeps_it(run, tmp_path):
    (tmp_path / "d.jsonl").write_text('{"question": "1+1", "answer": "2"}\n{"question": "2+2"\n')
    init = str(tmp_path / "init")
    shutil.copytree(os.path.join(run, "sft"), init)
    before = snapshot(run)
    error = fails(["--out_dir", run, "--init_from", init, "--data", str(tmp_path / "d.jsonl")])
    assert "holds a run" in error  # refused before the data is even read
    error = fails(["--out_dir", run, "--overwrite", "--init_from", init, "--data", str(tmp_path / "d.jsonl")])
    assert "d.jsonl line 2: invalid JSON" in error
    assert snapshot(run) == before  # checked before anything in out_dir was deleted


def test_overwrite_starts_afresh(run):
    train.main(["--out_dir", run, "--overwrite", *TINY[:2], "--rl_steps", "1", *TINY[4:]])
    assert [r["step"] for r in records(run) if r["stage"] == "rl" and r["phase"] == "train"] == [1]


def test_resume_refuses_a_changed_flag_and_applies_a_new_length(run, capsys):
    error = fails(["--out_dir", run, "--resume", "--algo", "grpo"])
    assert error == ("error: --resume: --algo grpo differs from the saved run's flowrl; start a new run "
                     "(another --out_dir, or --overwrite) to change it")
    error = fails(["--out_dir", run, "--resume", "--beta", "3"])
    assert "--beta 3.0 differs from the saved run's 15.0" in error
    train.main(["--out_dir", run, "--resume", "--rl_steps", "5", "--algo", "flowrl"])  # the same value is fine
    assert "with --rl_steps 5" in capsys.readouterr().out
    assert records(run)[-1]["step"] == 5


def test_a_moved_run_resumes(run, tmp_path):
    moved = str(tmp_path / "elsewhere")
    shutil.move(run, moved)  # the reference (sft/) moves with it: it is found relative to the run
    train.main(["--out_dir", moved, "--resume", "--rl_steps", "5", "--micro_batch", "2"])  # memory may change
    assert records(moved)[-1]["step"] == 5


def test_a_changed_reference_is_refused(run):
    sft = os.path.join(run, "sft")
    model = Transformer.from_pretrained(sft)
    with torch.no_grad():
        model.lm_head.weight[0, 0] += 1e-3
    model.save_pretrained(sft)
    error = fails(["--out_dir", run, "--resume", "--rl_steps", "5"])
    assert error == f"error: the reference model in {sft} changed since RL started (its checksum differs)"


def test_resume_with_a_missing_or_truncated_state(run):
    state = os.path.join(run, "ckpt", "state.safetensors")
    with open(state, "rb") as f:
        data = f.read()
    with open(state, "wb") as f:
        f.write(data[: len(data) // 2])
    error = fails(["--out_dir", run, "--resume"])
    assert error.startswith(f"error: {state}: not a readable safetensors file, the checkpoint is damaged")
    os.remove(state)
    assert fails(["--out_dir", run, "--resume"]) == f"error: {state}: not found: the checkpoint is incomplete"


def test_a_full_disk_keeps_the_last_checkpoint_and_resume_clears_the_debris(run, monkeypatch):
    real = checkpoint.save_file

    def full_disk(tensors, file):
        real(tensors, file)  # a partly written ckpt.tmp is left behind, as a real full disk would
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(checkpoint, "save_file", full_disk)
    error = fails(["--out_dir", run, "--resume", "--rl_steps", "6"])
    ckpt = os.path.join(run, "ckpt")
    assert error == (f"error: could not write a checkpoint to {ckpt}.tmp ([Errno 28] No space left on device); "
                     f"the last good checkpoint is kept in {ckpt}")
    assert checkpoint.read_json(os.path.join(ckpt, "trainer_state.json"))["step"] == 4
    monkeypatch.setattr(checkpoint, "save_file", real)
    os.makedirs(ckpt + ".tmp", exist_ok=True)  # a stale ckpt.tmp, as a crash mid-save leaves it
    train.main(["--out_dir", run, "--resume", "--rl_steps", "6"])
    assert records(run)[-1]["step"] == 6 and not os.path.exists(ckpt + ".tmp")


def test_ctrl_c_says_where_the_last_checkpoint_is(run, monkeypatch, capsys):
    real = train.rl_update

    def interrupted(*a, **k):
        if a[-1] == 6:  # rl_update's last argument is the step
            raise KeyboardInterrupt
        return real(*a, **k)
    monkeypatch.setattr(train, "rl_update", interrupted)
    with pytest.raises(SystemExit) as e:
        train.main(["--out_dir", run, "--resume", "--rl_steps", "8"])
    assert e.value.code == 130
    ckpt = os.path.join(run, "ckpt")
    assert capsys.readouterr().err == (f"interrupted at rl step 6; the last checkpoint (rl step 4) is in {ckpt}: "
                                       f"continue with --resume\n")


def test_the_tokenizer_must_fit_the_vocabulary(run, tmp_path):
    model = Transformer.from_pretrained(os.path.join(run, "sft"))
    small = Transformer(ModelConfig(vocab_size=10, n_embd=16, n_layer=1, n_head=2, n_kv_head=1,
                                                intermediate_size=32, eos_token_id=1))
    small.save_pretrained(tmp_path / "m")
    shutil.copy(os.path.join(run, "sft", "tokenizer.json"), tmp_path / "m")
    n = model.config.vocab_size
    assert fails(["--out_dir", str(tmp_path / "out"), "--init_from", str(tmp_path / "m")]) == (
        f"error: {tmp_path / 'm'}: the tokenizer has {n} ids but config.json's vocab_size is 10")


def test_data_files_name_the_problem(tmp_path):
    good = '{"question": "1+1", "answer": "2"}\n'
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + good.encode() + good.encode())
    assert read_jsonl(str(tmp_path / "bom.jsonl")) == [("1+1", "2"), ("1+1", "2")]  # the BOM is skipped
    (tmp_path / "latin1.jsonl").write_bytes(good.encode() + '{"question": "caf\xe9", "answer": "1"}\n'.encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.jsonl line 2: not UTF-8 text \(byte 17 of the line\)"):
        read_jsonl(str(tmp_path / "latin1.jsonl"))
    with pytest.raises(IsADirectoryError, match=f"{tmp_path}: is a directory, expected a JSONL file"):
        read_jsonl(str(tmp_path))


# ---- SIGKILL at any point, then --resume ------------------------------------------------------
# KILLER runs train.main with a trap: KILL_AT=name:n sends this process SIGKILL the n-th time it
# reaches the named point: sft_step / rl_update (inside a training step), save_file (while
# ckpt.tmp is half written), "replace->X" / "replaced->X" (just before / after a rename onto X).
KILLER = """
import os, signal, sys
sys.path.insert(0, {here!r})
import train
from training import checkpoint
point, nth = os.environ["KILL_AT"].rsplit(":", 1)
seen = [0]
def hit(name):
    if name == point:
        seen[0] += 1
        if seen[0] == int(nth):
            os.kill(os.getpid(), signal.SIGKILL)
def trap(module, name):
    real = getattr(module, name)
    def trapped(*a, **k):
        hit(name)
        return real(*a, **k)
    setattr(module, name, trapped)
trap(train, "sft_step"); trap(train, "rl_update"); trap(checkpoint, "save_file")
real_replace = os.replace
def replace(src, dst):
    hit("replace->" + os.path.basename(dst))
    real_replace(src, dst)
    hit("replaced->" + os.path.basename(dst))
os.replace = replace
train.main(sys.argv[1:])
"""
LONG = ["--sft_steps", "210", "--sft_batch", "8", "--rl_steps", "6", "--eval_interval", "2",
        "--prompts_per_step", "2", "--group_size", "4", "--eval_prompts", "3", "--eval_samples", "2",
        "--max_new_tokens", "24"]  # SFT checkpoints every 200 steps: one at step 200


def test_sigkill_anywhere_then_resume_equals_an_uninterrupted_run(tmp_path):
    killer = tmp_path / "killer.py"
    killer.write_text(KILLER.format(here=ROOT))

    def launch(out, flags, kill_at):
        env = dict(os.environ, KILL_AT=kill_at, OMP_NUM_THREADS="1")
        return subprocess.run([sys.executable, str(killer), "--out_dir", out, *flags], env=env,
                              capture_output=True, text=True, timeout=1800)
    whole = str(tmp_path / "whole")
    r = launch(whole, LONG, "nowhere:1")
    assert r.returncode == 0, r.stderr
    out = str(tmp_path / "killed")
    # each kill lands in the process resumed after the one before; the state it leaves behind:
    chain = ["sft_step:205",         # SFT step 205: ckpt holds SFT step 200
             "save_file:1",          # RL's first save, ckpt.tmp half written: ckpt still SFT 200
             "replace->ckpt:1",      # between the two renames: only ckpt.old (SFT 200) and ckpt.tmp
             "replaced->ckpt:2",     # (1: --resume renaming ckpt.old back) after the swap: ckpt is RL 0
             "rl_update:3",          # RL step 3: ckpt holds RL step 2
             "replace->ckpt.old:1"]  # the save after RL step 4, ckpt.tmp complete, before any rename
    for i, kill_at in enumerate(chain):
        r = launch(out, LONG + (["--resume"] if i else []), kill_at)
        assert r.returncode == -signal.SIGKILL, (kill_at, r.stderr)  # the kill happened
    r = launch(out, ["--resume"], "nowhere:1")
    assert r.returncode == 0, r.stderr
    assert records(out) == records(whole)
    assert sorted(os.listdir(out)) == sorted(os.listdir(whole)) == ["ckpt", "exact", "metrics.jsonl", "sft"]
    # the exact numbers of every evaluation, as the uninterrupted run's, none left from a killed one
    assert snapshot(os.path.join(out, "exact")) == snapshot(os.path.join(whole, "exact"))


def test_a_moved_reference_is_named_with_init_from(finished, tmp_path):
    init, out = str(tmp_path / "init"), str(tmp_path / "rl")
    shutil.copytree(os.path.join(finished, "sft"), init)
    train.main(["--out_dir", out, "--init_from", init, *TINY[2:]])  # RL only: pi_ref is init/
    shutil.move(init, str(tmp_path / "moved"))
    error = fails(["--out_dir", out, "--resume", "--rl_steps", "5"])
    assert error == f"error: the reference model {init} is missing: if it moved, give its place with --init_from"
    train.main(["--out_dir", out, "--resume", "--rl_steps", "5", "--init_from", str(tmp_path / "moved")])
    assert records(out)[-1]["step"] == 5
