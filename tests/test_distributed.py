"""train.py under torchrun: 2 CPU processes (gloo) against a single process on the same union batch.

Why the two runs can be compared at all: every response is sampled from its own generator, seeded
by (seed, step, its index in the step's whole batch), and rank r answers prompts r, r + 2, ...,
so the two ranks together sample exactly the responses a single process samples, and mini-batch j
of the two ranks together holds the groups of the single process's mini-batch j. What remains is
the loss normalisation: if it were wrong, the averaged gradient would differ from the single
process's. GRPO's loss is a mean over tokens, and the ranks hold different numbers of tokens,
the case that needs the explicit scaling above the RL loop's backward; FlowRL's is a mean over
responses, which the ranks hold equally many of. The check that sees the scale is grad_norm:
AdamW's update barely depends on the scale of the gradient (in the first steps it is about
lr x sign(g)), so the parameters mainly check the direction.
"""
import glob
import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT

# Runs train.main in this process, then saves this process's policy and log Z head, so that the
# test can compare the ranks with each other (only rank 0 writes checkpoints).
WRAPPER = """
import os, sys
sys.path.insert(0, {here!r})
import train
model, log_z_head = train.main(sys.argv[1:])
from safetensors.torch import save_file
tensors = {{"model." + k: v.detach().clone() for k, v in model.state_dict().items()}}
tensors.update({{"logz." + k: v.detach().clone() for k, v in log_z_head.state_dict().items()}})
save_file(tensors, os.path.join(os.environ["PARAMS_DIR"], "rank%s.safetensors" % os.environ.get("RANK", "0")))
"""
RL = ["--rl_steps", "2", "--eval_interval", "2", "--prompts_per_step", "4", "--group_size", "8",
      "--mini_batches", "2", "--eval_prompts", "4", "--eval_samples", "2", "--max_new_tokens", "40",
      "--logz_dropout", "0"]  # dropout masks are drawn per rank: only without them can runs agree


def run(tmp, name, flags, procs):
    """train.py with flags, in 1 process or under torchrun with procs processes on the CPU.
    Returns (out_dir, stdout, {rank: parameters})."""
    out, params = str(tmp / name), tmp / (name + "_params")
    params.mkdir()
    wrapper = tmp / "wrapper.py"
    wrapper.write_text(WRAPPER.format(here=ROOT))
    launch = [sys.executable] if procs == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"]
    env = dict(os.environ, PARAMS_DIR=str(params), OMP_NUM_THREADS="1")  # 2 cores, 2 processes
    r = subprocess.run([*launch, str(wrapper), "--out_dir", out, "--device", "cpu", *flags],
                       capture_output=True, text=True, timeout=1800, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    return out, r.stdout, {int(f.stem[4:]): load_file(f) for f in params.glob("rank*.safetensors")}


def records(out_dir, phase):
    with open(os.path.join(out_dir, "metrics.jsonl")) as f:
        return [r for r in map(json.loads, f) if r["phase"] == phase]


def assert_same_run(tmp, flags):
    """A 2-process run and a single-process run of the same flags end with the same parameters."""
    out2, stdout2, ranks = run(tmp, "two", flags, procs=2)
    out1, _, single = run(tmp, "one", flags, procs=1)
    assert sorted(ranks) == [0, 1] and sorted(single) == [0]
    for k in ranks[0]:
        assert torch.equal(ranks[0][k], ranks[1][k]), k  # DDP keeps the ranks identical, bit for bit
        torch.testing.assert_close(ranks[0][k], single[0][k], atol=1e-5, rtol=0, msg=k)
    # exactly one metrics.jsonl, written once (rank 0), and one copy of the printed log
    assert glob.glob(os.path.join(out2, "**", "metrics.jsonl"), recursive=True) == [os.path.join(out2, "metrics.jsonl")]
    assert len(records(out2, "train")) == len(records(out1, "train"))
    assert stdout2.count("parameters on cpu x 2 processes") == 1
    return out2, out1


@pytest.fixture(scope="module")
def sft_model(tmp_path_factory):
    """A toy model after 100 SFT steps, right about 8% of the time: enough for groups with mixed
    rewards (r_hat != 0) in a 2-step RL run."""
    out = str(tmp_path_factory.mktemp("sft"))
    r = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), "--out_dir", out, "--sft_steps", "100",
                        "--rl_steps", "0", "--eval_prompts", "4", "--eval_samples", "2"],
                       capture_output=True, text=True, timeout=1800, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert r.returncode == 0, r.stdout + r.stderr
    return os.path.join(out, "sft")


@pytest.mark.parametrize("algo", ["flowrl", "grpo"])
def test_two_processes_equal_one_process_on_the_union_batch(sft_model, tmp_path, algo):
    out2, out1 = assert_same_run(tmp_path, ["--init_from", sft_model, "--algo", algo, *RL])
    two, one = records(out2, "train"), records(out1, "train")
    assert [r["step"] for r in two] == [1, 2]
    # not a vacuous comparison: some groups had both right and wrong answers, so r_hat != 0
    assert any(0 < r["reward"] < 1 for r in one)
    for a, b in zip(two, one):
        # the same responses were sampled, and the all-reduced metrics are those of the union
        assert a["reward"] == b["reward"] and a["response_length"] == b["response_length"]
        for key in ("loss", "grad_norm", "grad_norm_max") + (("delta_abs", "log_z", "w_mean") if algo == "flowrl"
                                                                else ("clip_frac", "ratio_mean")):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key


def test_sft_under_torchrun_equals_one_process(tmp_path):
    # the SFT batch is split by rows; the loss is normalised by the whole batch's token count
    flags = ["--sft_steps", "3", "--rl_steps", "0", "--eval_prompts", "2", "--eval_samples", "2",
             "--max_new_tokens", "24"]
    out2, out1 = assert_same_run(tmp_path, flags)
    for a, b in zip(records(out2, "train"), records(out1, "train")):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-5)


@pytest.mark.parametrize("algo", ["flowrl", "grpo"])
def test_micro_batches_give_the_update_of_whole_mini_batches(sft_model, tmp_path, algo):
    # RL above: 4 prompts x 8 responses in 2 mini-batches of 16 rows, 8 per rank under 2
    # processes. --micro_batch 3 accumulates each optimizer step over passes of 3, 3 and 2 rows
    # (a single process: 3, 3, 3, 3, 3 and 1), each pass's loss weighted by its share of the
    # union's responses (FlowRL) or tokens (GRPO, where passes hold unequal token counts).
    # Both must end where the whole mini-batches end, to float precision. The 2-process run also
    # recomputes every block in backward (--grad_ckpt), inside DistributedDataParallel.
    flags = ["--init_from", sft_model, "--algo", algo, *RL]
    out_whole, _, whole = run(tmp_path, "whole", flags, procs=1)
    for procs, extra in ((1, []), (2, ["--grad_ckpt"])):
        out, _, micro = run(tmp_path, f"micro{procs}", flags + ["--micro_batch", "3", *extra], procs=procs)
        for k in whole[0]:
            torch.testing.assert_close(micro[0][k], whole[0][k], atol=1e-5, rtol=0, msg=k)
        for a, b in zip(records(out, "train"), records(out_whole, "train")):
            assert a["reward"] == b["reward"]
            for key in ("loss", "grad_norm", "grad_norm_max"):
                assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), key
