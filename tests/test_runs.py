"""A run is never corrupted by a second process, never replaced by a broken model, and a bad flag
stops it before out_dir is touched: the lock on out_dir (two real processes), SIGTERM, a
non-finite update, and numeric flags and devices checked at once."""
import os
import signal
import subprocess
import sys
import time

import pytest
from safetensors.torch import load_file

import train
from conftest import ROOT, TINY, snapshot
from training import checkpoint

SLOW = ["--sft_steps", "100000", "--sft_batch", "4"]  # a run that is still in SFT when the test acts


def start(out, *flags):
    return subprocess.Popen([sys.executable, os.path.join(ROOT, "train.py"), "--out_dir", out, *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))


def wait_for_sft(p, out):
    """Until the process p has logged its first SFT line (it holds the lock and writes out_dir)."""
    metrics = os.path.join(out, "metrics.jsonl")
    deadline = time.time() + 600
    while not (os.path.exists(metrics) and os.path.getsize(metrics) > 0):
        assert p.poll() is None, p.communicate()
        assert time.time() < deadline
        time.sleep(0.2)


def test_a_second_process_is_refused_and_a_dead_ones_lock_is_taken_over(tmp_path):
    out = str(tmp_path / "run")
    first = start(out, *SLOW)
    try:
        wait_for_sft(first, out)
        with open(os.path.join(out, ".lock")) as f:
            assert f.read().strip() == str(first.pid)
        for flags in ([], ["--resume"], ["--overwrite"]):
            second = start(out, *TINY, *flags)
            _, err = second.communicate(timeout=600)
            assert second.returncode == 1, err
            assert err.strip() == (f"error: {out} is in use by process {first.pid} (it holds {out}/.lock): "
                                   f"wait for it to end, or choose another --out_dir")
        assert first.poll() is None  # the first run went on, alone
    finally:
        first.kill()
        first.wait()
    # SIGKILL leaves .lock behind, naming the dead process; the next run takes it over
    assert os.path.exists(os.path.join(out, ".lock"))
    third = start(out, *TINY, "--overwrite")
    stdout, err = third.communicate(timeout=1800)
    assert third.returncode == 0, err
    assert stdout.splitlines()[0] == f"{out}: taking over the lock of process {first.pid}, which is not running"
    assert "ckpt" in os.listdir(out) and ".lock" not in os.listdir(out)  # an ended run removes its lock


def test_sigterm_ends_a_run_as_ctrl_c_does(tmp_path):
    out = str(tmp_path / "run")
    p = start(out, *SLOW)
    wait_for_sft(p, out)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=600)
    assert p.returncode == 128 + signal.SIGTERM
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("terminated at sft step ")
    assert lines[0].endswith("; no checkpoint was written yet")
    assert ".lock" not in os.listdir(out)


def test_a_non_finite_update_is_never_saved(tmp_path, monkeypatch):
    # RL step 1's update leaves a NaN in one weight (as an overflowing step would), with finite
    # loss and gradient norm: the check before the evaluation and the save stops the run, and the
    # checkpoint saved when RL started (RL step 0) stays, finite.
    real = train.rl_update

    def exploding(d, args, net, *rest):
        metrics = real(d, args, net, *rest)
        net.model.lm_head.weight.data[0, 0] = float("nan")
        return metrics
    monkeypatch.setattr(train, "rl_update", exploding)
    out = str(tmp_path / "run")
    with pytest.raises(SystemExit) as e:
        train.main(["--out_dir", out, *TINY, "--eval_interval", "1"])
    ckpt = os.path.join(out, "ckpt")
    # the toy model ties lm_head to the embedding: its state dict names the tensor by the embedding
    assert str(e.value.code) == (f"error: rl step 1: model model.embed_tokens.weight is not finite after the update; "
                                 f"stopping. The last good checkpoint is kept in {ckpt}")
    assert checkpoint.read_json(os.path.join(ckpt, "trainer_state.json"))["step"] == 0
    assert all(t.isfinite().all() for t in load_file(os.path.join(ckpt, "model.safetensors")).values())


def test_an_exploded_update_is_never_saved(tmp_path):
    # lr 1e9: AdamW's first step moves every weight by about 1e9 (its step is lr times a ratio
    # near 1), finite but far above EXPLODED; the run stops at the check before RL step 1's save
    out = str(tmp_path / "run")
    with pytest.raises(SystemExit) as e:
        train.main(["--out_dir", out, *TINY, "--lr", "1e9", "--mini_batches", "1", "--eval_interval", "1"])
    message = str(e.value.code)
    assert message.startswith("error: rl step 1: model ") and " after the update (above 1e+06: the update " \
        f"exploded); stopping. The last good checkpoint is kept in {os.path.join(out, 'ckpt')}" in message
    assert checkpoint.read_json(os.path.join(out, "ckpt", "trainer_state.json"))["step"] == 0


def test_save_refuses_non_finite_optimizer_state(tmp_path):
    import random

    import torch

    from flowrl import LogZHead
    from model import ModelConfig, Transformer
    from tasks.sums import train_toy_tokenizer
    from training.launch import Codec
    tok = train_toy_tokenizer()
    model = Transformer(ModelConfig(vocab_size=tok.get_vocab_size(), n_embd=16, n_layer=1, n_head=2, n_kv_head=1,
                                    intermediate_size=32, max_seq_len=64))
    head = LogZHead(16)
    opt = torch.optim.AdamW(list(model.parameters()) + list(head.parameters()))
    model(torch.ones(1, 4, dtype=torch.long)).sum().backward()
    opt.step()
    args = train.parse_args(["--out_dir", str(tmp_path)])[0]
    codec = Codec(tok, "{question}\n", 1, 0)
    save = lambda: checkpoint.save(str(tmp_path), "rl", 3, model, codec, opt, head, random.Random(0), args, {})  # noqa: E731
    open(tmp_path / "metrics.jsonl", "w").close()
    save()
    before = snapshot(tmp_path)
    next(iter(opt.state.values()))["exp_avg_sq"][0] = float("nan")
    with pytest.raises(ValueError, match=r"rl step 3: state opt\.0\.exp_avg_sq is not finite after the update; "
                                         r"stopping\. The last good checkpoint is kept in .*ckpt$"):
        save()
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("flags, message", [
    (["--lr", "nan"], "argument --lr: must be a finite number, got nan"),
    (["--beta", "inf"], "argument --beta: must be a finite number, got inf"),
    (["--sft_lr=-inf"], "argument --sft_lr: must be a finite number, got -inf"),
    (["--kl_coef", "nan"], "argument --kl_coef: must be a finite number, got nan"),
    (["--logz_dropout", "inf"], "argument --logz_dropout: must be a finite number, got inf"),
    (["--sft_slip", "nan"], "argument --sft_slip: must be a finite number, got nan"),
])
def test_non_finite_flags_are_refused_by_name(flags, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        train.main(["--out_dir", str(tmp_path / "run"), *flags])
    assert e.value.code == 2 and capsys.readouterr().err.strip().endswith(message)


@pytest.mark.parametrize("flags, message", [
    (["--lr", "nan"], "argument --lr: must be a finite number"),
    (["--kl_coef", "-1"], "--kl_coef -1.0: must be at least 0"),
    (["--lr", "1e39"], "--lr 1e+39 / --sft_lr 0.002: larger than a float32 holds"),
    (["--sft_slip", "2"], "--sft_slip must be in [0, 1]"),
    (["--seed", str(2**64)], f"--seed must be in [0, 2**63), got {2**64}"),
    (["--device", "meta"], "--device meta: train.py runs on cpu, cuda or mps"),
    (["--device", "xpu"], "--device xpu: train.py runs on cpu, cuda or mps"),
])
def test_overwrite_deletes_nothing_when_a_check_fails(finished, flags, message, capsys):
    before = snapshot(finished)
    with pytest.raises(SystemExit) as e:
        train.main(["--out_dir", finished, "--overwrite", *flags])
    assert message in str(e.value.code) + capsys.readouterr().err
    assert snapshot(finished) == before  # the run is whole, and no .lock is left


# ---- a data file's lines: each problem one line naming the file and the line ---------------------

def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("line, message", [
    ('{"question": ' + "[" * 100_000 + "]" * 100_000 + ', "answer": "1"}', "line 2: JSON nested too deeply to read"),
    ('{"question": "1+\\ud800", "answer": "2"}', "line 2: field 'question' holds a lone surrogate escape"),
    ('{"question": "1+1", "answer": " "}', "line 2: field 'answer' is empty: no completion could be rewarded"),
])
def test_bad_data_lines(tmp_path, line, message):
    from tasks.jsonl import read_jsonl
    path = write_lines(tmp_path / "d.jsonl", ['{"question": "1+1", "answer": "2"}', line])
    with pytest.raises(ValueError, match="d.jsonl " + message.replace("(", r"\(")):
        read_jsonl(path)


def test_held_out_questions_never_train_and_the_split_is_told(tmp_path):
    from tasks.jsonl import FileTask
    # 10 distinct questions, each twice: 20 lines, a fifth (4) held out; their 4 repeats (at
    # most: a repeat may itself be held out) leave the training set
    lines = [f'{{"question": "{q}+1", "answer": "{q + 1}"}}' for q in range(10) for _ in range(2)]
    task = FileTask(write_lines(tmp_path / "d.jsonl", lines), n_eval=64)
    held = {q for q, _ in task.eval_set}
    assert len(task.eval_set) == 4 and not held & {q for q, _ in task.train_set}
    n_dropped = 20 - 4 - len(task.train_set)
    assert n_dropped >= 1 and task.describe == (
        f"data {tmp_path / 'd.jsonl'}: {len(task.train_set)} problems to train on, 4 held out "
        f"(--eval_prompts 64 cut to a fifth of the file), {n_dropped} repeats of held-out questions left out of training")


def test_a_huge_question_is_refused_before_it_is_tokenized(tmp_path):
    import argparse

    from tasks.sums import train_toy_tokenizer
    from training.launch import Codec, load_task
    # the toy tokenizer's longest token is "<pad>", 5 characters: a question of 5,000,000 bytes has
    # at least 1,000,000 tokens, far past a context of 128, without tokenizing it
    tok = train_toy_tokenizer()
    path = write_lines(tmp_path / "d.jsonl", ['{"question": "1+1", "answer": "2"}',
                                              '{"question": "' + "1" * 5_000_000 + '", "answer": "2"}'])
    args = argparse.Namespace(task=None, data=path, eval_data=None, eval_prompts=1, max_new_tokens=48, reward=None)
    with pytest.raises(ValueError, match=r"d\.jsonl line 2: the question is 5,000,000 bytes, at least 1,000,000 "
                                         r"tokens: more than the model's context of 128 tokens"):
        load_task(args, Codec(tok, "{question}\n", 1, 0), 128)


# ---- --resume says where it starts; a full disk names the file ------------------------------------

def test_resume_says_where_it_starts_and_when_nothing_is_left(run, capsys):
    ckpt = os.path.join(run, "ckpt")
    train.main(["--out_dir", run, "--resume"])  # TINY's 4 RL steps are done
    assert f"resuming {ckpt} at rl step 4: the run is finished, a larger --rl_steps continues it\n" in capsys.readouterr().out
    train.main(["--out_dir", run, "--resume", "--rl_steps", "5", "--eval_interval", "5"])
    assert capsys.readouterr().out.startswith(f"resuming {ckpt} at rl step 4, with --eval_interval 5, --rl_steps 5\n")


def test_a_full_disk_while_logging_names_the_file(run, monkeypatch):
    import builtins
    import errno

    def full_disk(file, mode="r", *a, **k):
        if mode == "a":
            raise OSError(errno.ENOSPC, "No space left on device")
        return builtins.open(file, mode, *a, **k)
    monkeypatch.setattr(checkpoint, "open", full_disk, raising=False)
    with pytest.raises(SystemExit) as e:
        train.main(["--out_dir", run, "--resume", "--rl_steps", "6"])
    ckpt = os.path.join(run, "ckpt")
    assert str(e.value.code) == (f"error: could not write {run}/metrics.jsonl (No space left on device); the last "
                                 f"checkpoint (rl step 4) is in {ckpt}: continue with --resume")


def test_resume_makes_metrics_agree_with_the_checkpoint(tmp_path):
    # a checkpoint at RL step 2 that counted 10 lines; among them a torn line (a crash mid-write),
    # a step logged twice and a step past the checkpoint's; one more line past the count. Kept:
    # the whole rows up to RL step 2, each once, in their order.
    import json
    rows = [dict(phase="train", stage="sft", step=25), dict(phase="train", stage="sft", step=50),
            dict(phase="eval", stage="sft", step=50), dict(phase="eval", stage="rl", step=0),
            dict(phase="train", stage="rl", step=1)]
    lines = [json.dumps(r) for r in rows] + ['{"phase": "train", "stage": "rl", "st',
                                             json.dumps(dict(phase="train", stage="rl", step=2, loss=1.0)),
                                             json.dumps(dict(phase="train", stage="rl", step=2, loss=9.0)),
                                             json.dumps(dict(phase="eval", stage="rl", step=2)),
                                             json.dumps(dict(phase="train", stage="rl", step=3)),
                                             json.dumps(dict(phase="eval", stage="rl", step=4))]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    os.makedirs(tmp_path / "ckpt")
    checkpoint.tidy(str(tmp_path), str(tmp_path / "ckpt"), dict(stage="rl", step=2, metrics_lines=10))
    kept = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert kept == rows + [dict(phase="train", stage="rl", step=2, loss=1.0), dict(phase="eval", stage="rl", step=2)]


def test_a_checkpoint_that_is_a_symbolic_link_is_replaced_not_followed(run, tmp_path):
    ckpt, elsewhere = os.path.join(run, "ckpt"), str(tmp_path / "elsewhere")
    os.replace(ckpt, elsewhere)
    os.symlink(elsewhere, ckpt)
    before = snapshot(elsewhere)
    train.main(["--out_dir", run, "--resume", "--rl_steps", "8"])  # saves at RL steps 6 and 8
    assert os.path.isdir(ckpt) and not os.path.islink(ckpt)
    assert checkpoint.read_json(os.path.join(ckpt, "trainer_state.json"))["step"] == 8
    assert snapshot(elsewhere) == before  # the link's target is left as it was


def test_an_out_dir_that_cannot_be_written_fails_before_sft(tmp_path):
    # (a read-only directory does not stop root, who runs CI: a path under a file stands in for it)
    (tmp_path / "file").write_text("")
    out = str(tmp_path / "file" / "run")
    with pytest.raises(SystemExit) as e:
        train.main(["--out_dir", out, *TINY])
    assert str(e.value.code) == f"error: {out}: cannot write there (Not a directory)"


def test_a_refused_run_leaves_no_directory_behind(tmp_path):
    out = str(tmp_path / "new")
    with pytest.raises(SystemExit):
        train.main(["--out_dir", out, "--device", "xpu"])
    assert not os.path.exists(out)


def test_overwrite_of_a_run_whose_ckpt_is_a_link(run, tmp_path):
    ckpt, elsewhere = os.path.join(run, "ckpt"), str(tmp_path / "elsewhere")
    os.replace(ckpt, elsewhere)
    os.symlink(elsewhere, ckpt)
    before = snapshot(elsewhere)
    train.main(["--out_dir", run, "--overwrite", *TINY])
    assert os.path.isdir(ckpt) and not os.path.islink(ckpt) and snapshot(elsewhere) == before


def test_a_checkpoint_with_non_finite_weights_is_refused_at_load(run, tmp_path):
    import shutil

    from model import Transformer
    init = str(tmp_path / "init")
    shutil.copytree(os.path.join(run, "sft"), init)
    model = Transformer.from_pretrained(init)
    model.model.norm.weight.data[0] = float("nan")
    model.save_pretrained(init)
    with pytest.raises(SystemExit) as e:
        train.main(["--out_dir", str(tmp_path / "rl"), "--init_from", init, *TINY])
    assert str(e.value.code) == f"error: {init}: the weights of model.norm.weight hold a NaN or an infinity"
    assert not os.path.exists(tmp_path / "rl")
