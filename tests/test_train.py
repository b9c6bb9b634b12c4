"""train.py end to end, on runs a few steps long: outputs, resume, real checkpoints, bad input."""
import json
import math
import os
import subprocess
import sys

import pytest
import torch

from model import Transformer
from tasks.sums import train_toy_tokenizer
from conftest import ROOT, TIMING, TINY, tiny_qwen2


def train(*flags, ok=True):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "train.py"), *flags], capture_output=True,
                       text=True, timeout=1800)
    if ok:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def records(out_dir):
    with open(os.path.join(out_dir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("toy"))
    r = train("--out_dir", out, *TINY)
    return out, r.stdout


def test_toy_run_writes_metrics_and_checkpoints(toy_run):
    out, stdout = toy_run
    recs = records(out)
    evals = [(r["stage"], r["step"]) for r in recs if r["phase"] == "eval"]
    assert evals == [("sft", 12), ("rl", 2), ("rl", 4)]
    for r in recs:
        if r["phase"] == "eval":
            assert {"accuracy", "pass_at_k", "distinct_correct", "greedy_accuracy"} <= r.keys()
            assert 0 <= r["accuracy"] <= r["pass_at_k"] <= 1
    rl = [r for r in recs if r["phase"] == "train" and r["stage"] == "rl"]
    assert [r["step"] for r in rl] == [1, 2, 3, 4]
    for key in ("reward", "loss", "delta_abs", "log_z", "w_mean", "w_clipped_frac", "grad_norm",
                "response_length", "tokens_per_s", "sampler_logp_diff"):
        assert all(key in r for r in rl), key
    # the sampler's log-probs and the teacher-forced pi_old agree (sample.py's docstring, point 1)
    assert max(r["sampler_logp_diff"] for r in rl) < 1e-4
    assert "sample" in rl[0] and "rl step 4/4" in stdout
    # checkpoints: the SFT model and the latest, both loadable by transformers to our logits
    transformers = pytest.importorskip("transformers")
    for d in ("sft", "ckpt"):
        ours = Transformer.from_pretrained(os.path.join(out, d)).eval()
        theirs = transformers.AutoModelForCausalLM.from_pretrained(os.path.join(out, d)).eval()
        x = torch.randint(0, ours.config.vocab_size, (2, 10))
        with torch.no_grad():
            torch.testing.assert_close(theirs(x).logits, ours(x), atol=1e-4, rtol=0)
    assert {"tokenizer.json", "state.safetensors", "trainer_state.json"} <= set(os.listdir(os.path.join(out, "ckpt")))


def test_resume_reaches_the_same_metrics(toy_run, tmp_path):
    out, _ = toy_run
    part = str(tmp_path / "part")
    train("--out_dir", part, *TINY[:2], "--rl_steps", "2", *TINY[4:])  # stops after RL step 2
    train("--out_dir", part, "--resume", "--rl_steps", "4")            # the same run, continued

    def comparable(recs):  # everything but wall-clock speed
        return [{k: v for k, v in r.items() if k not in TIMING} for r in recs]
    assert comparable(records(part)) == comparable(records(out))


def test_resume_after_a_crash_between_renames(toy_run, tmp_path):
    # save_checkpoint renames ckpt -> ckpt.old, then ckpt.tmp -> ckpt: a crash in between leaves
    # only ckpt.old, which --resume must use
    import shutil
    out = str(tmp_path / "run")
    shutil.copytree(toy_run[0], out)
    os.replace(os.path.join(out, "ckpt"), os.path.join(out, "ckpt.old"))
    train("--out_dir", out, "--resume", "--rl_steps", "5")
    assert records(out)[-1]["step"] == 5


def test_init_from_hf_checkpoint_with_jsonl_data(tmp_path):
    tiny_qwen2(tmp_path / "init", train_toy_tokenizer())
    with open(tmp_path / "data.jsonl", "w") as f:
        for a, b in [(12, 30), (41, 17), (25, 25), (60, 33), (71, 19), (44, 44), (13, 86), (52, 21)]:
            f.write(json.dumps({"question": f"{a}+{b}", "answer": f"{a}+{b}={a + b} #### {a + b}"}) + "\n")
    out = str(tmp_path / "out")
    train("--init_from", str(tmp_path / "init"), "--data", str(tmp_path / "data.jsonl"), "--out_dir", out,
          "--rl_steps", "2", "--eval_interval", "2", "--prompts_per_step", "2", "--group_size", "4",
          "--max_new_tokens", "16", "--prompt_template", "Q {question}\n")
    recs = records(out)
    assert [(r["phase"], r["step"]) for r in recs] == [("eval", 0), ("train", 1), ("train", 2), ("eval", 2)]
    assert not os.path.exists(os.path.join(out, "sft"))  # no SFT stage on a given checkpoint


@pytest.mark.parametrize("lines, message", [
    (['{"question": "1+1", "answer": "2"}', '{"question": "2+2", "answer": "4"', "{}"], "line 2: invalid JSON"),
    (['{"question": "1+1", "answer": "2"}', '{"question": "2+2"}'], "line 2: missing field 'answer'"),
    (['{"question": "1+1", "answer": "2"}', '{"question": "' + "1+" * 100 + '1", "answer": "2"}'],
     "line 2: the prompt is 202 tokens; with --max_new_tokens 48 that exceeds the model's context of 128"),
])
def test_bad_jsonl_names_file_and_line(tmp_path, lines, message):
    tok = train_toy_tokenizer()
    from model import ModelConfig
    Transformer(ModelConfig(vocab_size=tok.get_vocab_size(), eos_token_id=1, max_seq_len=128)).save_pretrained(tmp_path / "m")
    tok.save(str(tmp_path / "m" / "tokenizer.json"))
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n")
    r = train("--init_from", str(tmp_path / "m"), "--data", str(tmp_path / "d.jsonl"),
              "--out_dir", str(tmp_path / "out"), "--rl_steps", "1", ok=False)  # short if it wrongly runs
    assert r.returncode != 0
    assert f"d.jsonl {message}" in r.stderr and "Traceback" not in r.stderr


def test_unknown_algo_is_an_argparse_error(tmp_path):
    r = train("--algo", "ppo", "--out_dir", str(tmp_path), *TINY, ok=False)
    assert r.returncode == 2 and "invalid choice: 'ppo'" in r.stderr


def test_non_finite_loss_stops_and_keeps_the_checkpoint(tmp_path):
    # lr 1e30 makes the first update blow the weights up; the next loss is NaN
    out = str(tmp_path / "out")
    r = train("--out_dir", out, *TINY, "--lr", "1e30", ok=False)
    assert r.returncode == 1
    assert "error: rl step 1: the loss is nan; stopping. The last good checkpoint is kept in" in r.stderr
    with open(os.path.join(out, "ckpt", "trainer_state.json")) as f:
        assert json.load(f)["step"] == 0  # the checkpoint written before RL began, intact
    Transformer.from_pretrained(os.path.join(out, "ckpt"))


@pytest.mark.parametrize("flags, message", [
    (["--data", "x.jsonl"], "--task math needs --init_from"),
    (["--mini_batches", "0"], "argument --mini_batches: must be at least 1, got 0"),
    (["--prompts_per_step", "3"], "--prompts_per_step 3 is not divisible by --mini_batches 2"),
    (["--max_new_tokens", "200"], "error: toy task: the prompt is 10 tokens; with --max_new_tokens 200 "
                                  "that exceeds the model's context of 128 tokens"),
    (["--eval_prompts", "2000"], "error: --eval_prompts 2000: the toy task holds out at most 500"),
    (["--resume"], "error: --resume: no checkpoint in"),
])
def test_bad_flags_fail_before_training(tmp_path, flags, message):
    r = train("--out_dir", str(tmp_path / "out"), *TINY, *flags, ok=False)
    assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr
    assert "sft step" not in r.stdout  # nothing was trained before the error


def test_corrupted_weights_are_one_clear_error(tmp_path):
    tok = train_toy_tokenizer()
    from model import ModelConfig
    Transformer(ModelConfig(vocab_size=tok.get_vocab_size(), eos_token_id=1)).save_pretrained(tmp_path / "m")
    tok.save(str(tmp_path / "m" / "tokenizer.json"))
    (tmp_path / "m" / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header")
    r = train("--init_from", str(tmp_path / "m"), "--out_dir", str(tmp_path / "out"), "--rl_steps", "1", ok=False)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"error: {tmp_path / 'm' / 'model.safetensors'}: not a readable safetensors file")


def test_evaluation_in_chunks_of_rows_samples_the_same(tmp_path):
    # 5 held-out prompts x 3 samples = 15 rows, generated 4 at a time (4, 4, 4, 3; greedy: 4, 1).
    # The generator's uniforms are drawn row after row, so the chunks see the numbers one batch
    # of 15 would: the evaluation is the same, its KV cache a quarter of the size.
    import train as train_module
    flags = ["--sft_steps", "300", "--rl_steps", "0", "--eval_prompts", "5", "--eval_samples", "3"]
    train_module.main(["--out_dir", str(tmp_path / "whole"), *flags])
    train_module.main(["--out_dir", str(tmp_path / "chunks"), *flags, "--eval_batch", "4"])
    evals = [[r for r in records(str(tmp_path / d)) if r["phase"] == "eval"] for d in ("whole", "chunks")]
    assert len(evals[0]) == 1 and evals[0] == evals[1]
    assert evals[0][0]["accuracy"] > 0  # not a comparison of empty answers


def test_save_interval_and_keep(tmp_path):
    # checkpoints every 2 RL steps of 6 (and at the end), evaluations every 3: saved at 2, 4, 6;
    # --keep 2 leaves the latest in ckpt and the one before it as ckpt_rl_4
    out = str(tmp_path / "run")
    import train as train_py
    train_py.main(["--out_dir", out, *TINY, "--rl_steps", "6", "--eval_interval", "3", "--save_interval", "2",
                   "--keep", "2"])
    assert sorted(n for n in os.listdir(out) if n.startswith("ckpt")) == ["ckpt", "ckpt_rl_4"]
    with open(os.path.join(out, "ckpt_rl_4", "trainer_state.json")) as f:
        assert json.load(f)["step"] == 4
    assert [(r["stage"], r["step"]) for r in records(out) if r["phase"] == "eval"] == [("sft", 12), ("rl", 3), ("rl", 6)]
    # --overwrite removes the kept ones too
    train_py.main(["--out_dir", out, *TINY, "--rl_steps", "2", "--overwrite"])
    assert sorted(n for n in os.listdir(out) if n.startswith("ckpt")) == ["ckpt"]


def test_eval_data_is_the_held_out_set(tmp_path, capsys):
    tiny_qwen2(tmp_path / "init", train_toy_tokenizer(), layers=1)
    line = lambda a, b: json.dumps({"question": f"{a}+{b}", "answer": str(a + b)}) + "\n"  # noqa: E731
    (tmp_path / "train.jsonl").write_text("".join(line(a, 1) for a in range(1, 9)))
    (tmp_path / "test.jsonl").write_text(line(3, 1) + line(7, 7) + line(8, 8))  # 3+1 repeats a training question
    import train as train_py
    out = str(tmp_path / "out")
    train_py.main(["--init_from", str(tmp_path / "init"), "--data", str(tmp_path / "train.jsonl"), "--eval_data",
                   str(tmp_path / "test.jsonl"), "--out_dir", out, "--rl_steps", "1", "--prompts_per_step", "2",
                   "--group_size", "2", "--max_new_tokens", "8", "--eval_samples", "2"])
    said = capsys.readouterr().out
    assert (f"data {tmp_path / 'train.jsonl'}: 7 problems to train on, 3 held out from {tmp_path / 'test.jsonl'}, "
            f"1 repeats of held-out questions left out of training") in said


def test_rollout_sampling_flags(tmp_path):
    # at temperature 0.7 the recorded log-probs and the teacher-forced pi_old of the first
    # mini-batch are of one distribution (w == 1); top_p 0.9 shapes the sampling only: RL's
    # log-probs are untruncated (a token outside pi_ref's nucleus would have log-prob -inf), so
    # sampler_logp_diff is the truncation's gap, log(nucleus mass) >= 0 on some token
    out = str(tmp_path / "run")
    import train as train_py
    train_py.main(["--out_dir", out, *TINY, "--temperature", "0.7", "--eval_temperature", "0.6", "--eval_top_p", "0.95"])
    rl = [r for r in records(out) if r["phase"] == "train" and r["stage"] == "rl"]
    assert all(r["sampler_logp_diff"] < 1e-4 and r["w_mean_first"] == 1.0 for r in rl)
    assert all((r["temperature"], r["top_p"]) == (0.6, 0.95) for r in records(out) if r["phase"] == "eval")
    nucleus = str(tmp_path / "nucleus")
    train_py.main(["--out_dir", nucleus, *TINY, "--top_p", "0.9"])
    rl = [r for r in records(nucleus) if r["phase"] == "train" and r["stage"] == "rl"]
    assert all(math.isfinite(r["loss"]) and r["w_mean_first"] == 1.0 for r in rl)
    assert max(r["sampler_logp_diff"] for r in rl) > 1e-3


@pytest.mark.parametrize("log_z", ["mean", "logmeanexp"])
def test_log_z_estimators_train(tmp_path, log_z):
    out = str(tmp_path / "run")
    import train as train_py
    train_py.main(["--out_dir", out, *TINY, "--log_z", log_z, "--reward_norm", "raw"])
    rl = [r for r in records(out) if r["phase"] == "train" and r["stage"] == "rl"]
    assert len(rl) == 4 and all(abs(r["log_z"]) < 1e3 and r["loss"] >= 0 for r in rl)


@pytest.mark.parametrize("flags, message", [
    (["--log_z", "mean", "--micro_batch", "3"], "--micro_batch 3 must be a multiple of --group_size 4"),
    (["--log_z", "mean", "--algo", "grpo"], "--log_z mean is FlowRL's"),
    (["--temperature", "0"], "rollouts need a temperature above 0"),
    (["--top_p", "0"], "--top_p 0.0 / --eval_top_p 1.0: must be in (0, 1]"),
    (["--eval_data", "x.jsonl"], "--eval_data holds out problems of a --data file"),
])
def test_new_flags_refused(tmp_path, flags, message):
    r = train("--out_dir", str(tmp_path / "run"), *TINY, *flags, ok=False)
    assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr
