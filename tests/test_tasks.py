"""--task and --reward end to end: Countdown on a checkpoint, a user's reward from their own
file, a reward that raises or returns no number, and the task saved with the run for --resume."""
import json
import os

import pytest
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

import train
from conftest import TINY
from model import ModelConfig, Transformer
from tasks.countdown import question

RL = ["--rl_steps", "2", "--eval_interval", "2", "--prompts_per_step", "2", "--group_size", "4",
      "--eval_prompts", "3", "--eval_samples", "2", "--max_new_tokens", "16"]


@pytest.fixture(scope="module")
def countdown_model(tmp_path_factory):
    """A random model with a character tokenizer that covers Countdown's prompts and answers."""
    path = tmp_path_factory.mktemp("countdown_model")
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r".|\n"), "isolated")
    tok.decoder = decoders.Fuse()
    text = [question([1, 22, 34, 99], 87), "<answer>(1 + 2) * 3 - 4 / 5</answer>", "0123456789"]
    tok.train_from_iterator(text, trainers.WordLevelTrainer(special_tokens=["<pad>", "<eos>", "<unk>"]))
    Transformer(ModelConfig(vocab_size=tok.get_vocab_size(), n_embd=32, n_layer=1, n_head=2, n_kv_head=1,
                            intermediate_size=64, max_seq_len=512, eos_token_id=1)).save_pretrained(path)
    tok.save(str(path / "tokenizer.json"))
    return str(path)


def rows(out, phase):
    with open(os.path.join(out, "metrics.jsonl")) as f:
        return [r for r in map(json.loads, f) if r["phase"] == phase]


def test_countdown_runs_and_resumes_with_its_task(countdown_model, tmp_path, capsys):
    out = str(tmp_path / "run")
    train.main(["--out_dir", out, "--init_from", countdown_model, "--task", "countdown", "--countdown_numbers", "3",
                "--countdown_max", "20", "--countdown_target_max", "50", *RL])
    assert "countdown, 3 held-out problems of 3 numbers up to 20, targets up to 50" in capsys.readouterr().out
    assert [r["step"] for r in rows(out, "eval")] == [0, 2]
    assert rows(out, "train")[0]["sample"].startswith("Numbers: ")
    # --resume takes the task from the run; another task is refused
    train.main(["--out_dir", out, "--resume", "--rl_steps", "3"])
    assert rows(out, "train")[-1]["step"] == 3
    with pytest.raises(SystemExit) as e:
        train.main(["--out_dir", out, "--resume", "--task", "math"])
    assert "--resume: --task math differs from the saved run's countdown" in str(e.value.code)


def write(path, text):
    path.write_text(text)
    return str(path)


def test_a_reward_of_ones_own(tmp_path):
    # every completion is rewarded 1: every response of every group is "correct", so the
    # evaluations' accuracy is exactly 1 and the training reward's mean is 1
    my = write(tmp_path / "my_reward.py", "def always(completion, gold):\n    return 1\n")
    out = str(tmp_path / "run")
    train.main(["--out_dir", out, *TINY, "--reward", f"{my}:always"])
    assert all(r["reward"] == 1.0 for r in rows(out, "train") if r["stage"] == "rl")
    assert all(r["accuracy"] == 1.0 for r in rows(out, "eval"))


@pytest.mark.parametrize("body, message", [
    ("def bad(completion, gold):\n    return 1 / 0\n", "reward bad raised ZeroDivisionError on response 0 (division by zero)"),
    ("def bad(completion, gold):\n    return 'yes'\n", "reward bad returned 'yes' on response 0: expected a finite number"),
    ("def bad(completion, gold):\n    return float('nan')\n", "reward bad returned nan on response 0: expected a finite number"),
])
def test_a_reward_that_misbehaves_is_one_line(tmp_path, body, message):
    my = write(tmp_path / "my_reward.py", body)
    out = str(tmp_path / "run")
    with pytest.raises(SystemExit) as e:
        train.main(["--out_dir", out, *TINY, "--reward", f"{my}:bad"])
    assert str(e.value.code) == f"error: {message}"
    assert os.path.exists(os.path.join(out, "metrics.jsonl"))  # the SFT rows before it stay


@pytest.mark.parametrize("spec, message", [
    ("nowhere.py:f", "--reward nowhere.py:f: nowhere.py not found"),
    ("my_reward.py", "--reward my_reward.py: expected FILE.py:FUNCTION"),
    ("{dir}/my_reward.py:other", "--reward {dir}/my_reward.py:other: {dir}/my_reward.py defines no function 'other'"),
    ("{dir}/broken.py:f", "--reward {dir}/broken.py:f: {dir}/broken.py failed to load (NameError: name 'oops' is not defined)"),
])
def test_a_reward_that_cannot_be_loaded_is_one_line(tmp_path, spec, message):
    write(tmp_path / "my_reward.py", "def f(completion, gold):\n    return 0\n")
    write(tmp_path / "broken.py", "oops\n")
    spec, message = spec.format(dir=tmp_path), message.format(dir=tmp_path)
    with pytest.raises(SystemExit) as e:
        train.main(["--out_dir", str(tmp_path / "run"), *TINY, "--reward", spec])
    assert str(e.value.code) == f"error: {message}"
    assert not os.path.exists(tmp_path / "run" / "metrics.jsonl")  # refused before SFT


@pytest.mark.parametrize("flags, message", [
    (["--task", "countdown", "--countdown_format", "answer"],
     "--task countdown --countdown_format answer needs --init_from, a model whose tokenizer reads its text"),
    (["--data", "x.jsonl"], "--task math needs --init_from"),
    (["--task", "math", "--init_from", "x"], "--task math needs --data"),
    (["--task", "sums", "--data", "x.jsonl"], "--task sums makes its own problems"),
    (["--task", "sums", "--data", "x.jsonl", "--init_from", "x"], "--task sums makes its own problems"),
    (["--task", "countdown", "--data", "x.jsonl"], "--task countdown makes its own problems"),
    (["--format_score", "2"], "--format_score must be in [0, 1], got 2.0"),
    (["--countdown_numbers", "6"], "--countdown_numbers 6: at most 5"),
    (["--task", "countdown", "--countdown_numbers", "5"], "--countdown_numbers 5: the toy takes 2 to 4"),
    (["--task", "countdown", "--countdown_target_max", "100"], "--countdown_target_max 100: the toy's targets are at most 99"),
    # flags that a run would silently leave unused
    (["--sft_data", "x.jsonl", "--sft_slip", "0.5"], "--sft_slip makes the toy teachers' slips: --sft_data's completions"),
    (["--log_z", "mean", "--logz_dropout", "0"], "--logz_dropout is the log Z head's dropout: --log_z mean has no head"),
])
def test_task_flags(tmp_path, flags, message):
    with pytest.raises(SystemExit) as e:
        train.main(["--out_dir", str(tmp_path / "run"), *flags])
    assert message in str(e.value.code)


def test_the_readmes_reward_example_runs(tmp_path):
    from conftest import ROOT
    readme = open(os.path.join(ROOT, "README.md")).read()
    example = readme.split("```python\n# my_reward.py")[1].split("```")[0]
    my = write(tmp_path / "my_reward.py", "# my_reward.py" + example)
    out = str(tmp_path / "run")
    train.main(["--out_dir", out, *TINY, "--reward", f"{my}:exact_and_short"])
    assert all(r["reward"] >= 0.1 for r in rows(out, "train") if r["stage"] == "rl")  # short: at least 0.1 each


def logp_of(model_dir, question, completion):
    """log pi(completion | question) under a saved toy-task model, teacher-forced."""
    import torch
    from sample import rollout_of, token_logprobs
    from training.checkpoint import load_tokenizer
    model, tok = Transformer.from_pretrained(model_dir), load_tokenizer(model_dir)
    batch = rollout_of([tok.encode(question + "\n").ids], [tok.encode(completion).ids + [1]], 0, 1, "cpu")
    with torch.no_grad():
        return token_logprobs(model, batch).logp.sum().item()


def test_sft_data_is_what_sft_imitates(tmp_path):
    # one demonstration the sums teacher never writes (it adds the numbers in some order; this
    # one skips to the answer): SFT on it makes it far likelier than SFT on the teacher does
    pair = {"prompt": "1+2+3+4", "completion": "#### 10"}
    data = write(tmp_path / "sft.jsonl", json.dumps(pair) + "\n")
    on_file, on_teacher = str(tmp_path / "file"), str(tmp_path / "teacher")
    train.main(["--out_dir", on_file, *TINY, "--sft_data", data, "--rl_steps", "0"])
    train.main(["--out_dir", on_teacher, *TINY, "--rl_steps", "0"])
    gap = logp_of(os.path.join(on_file, "sft"), "1+2+3+4", "#### 10") - logp_of(
        os.path.join(on_teacher, "sft"), "1+2+3+4", "#### 10")
    assert gap > 3  # e^3: twenty times likelier at least (12 steps already give several nats)
    assert [r["stage"] for r in rows(on_file, "eval")] == ["sft"]


def test_sft_data_before_rl_on_a_loaded_model(countdown_model, tmp_path):
    # a loaded model with --sft_data: SFT first, and pi_ref is the run's own sft/, not --init_from
    pair = {"prompt": question([1, 2, 3, 4], 10), "completion": "<answer>1 + 2 + 3 + 4</answer>"}
    data = write(tmp_path / "sft.jsonl", json.dumps(pair) + "\n")
    out = str(tmp_path / "run")
    train.main(["--out_dir", out, "--init_from", countdown_model, "--task", "countdown", "--countdown_numbers", "3",
                "--countdown_max", "20", "--countdown_target_max", "50", *RL, "--sft_data", data, "--sft_steps", "3",
                "--sft_batch", "2"])
    assert [r["stage"] for r in rows(out, "eval")] == ["sft", "rl"]
    with open(os.path.join(out, "ckpt", "trainer_state.json")) as f:
        assert json.load(f)["ref"]["dir"] == "sft"


@pytest.mark.parametrize("line, message", [
    ('{"prompt": "1+2+3+4"}', "line 2: missing field 'completion' (a non-empty string)"),
    ('{"prompt": "1+2+3+4", "completion": "  "}', "line 2: missing field 'completion' (a non-empty string)"),
    ('{"prompt": 5, "completion": "#### 5"}', "line 2: missing field 'prompt' (a non-empty string)"),
    ('[1, 2]', "line 2: missing field 'prompt'"),
    ('{"prompt": "1+2+3+4", "completion": "ten"}', "line 2: the completion holds characters the tokenizer does not know (<unk>)"),
    ('{"prompt": "1+2+3+4", "completion": "' + "1" * 200 + '"}', "line 2: prompt, completion and end token are 209 tokens"),
    ('{"prompt": "1+2+3+4", "completion": "' + "1" * 20_000 + '"}', "line 2: longer than the model's context of 128"),
    ('{"prompt": "1+2', "line 2: invalid JSON"),
])
def test_bad_sft_data_is_one_line_and_nothing_is_written(tmp_path, line, message):
    data = write(tmp_path / "sft.jsonl", '{"prompt": "1+1+1+1", "completion": "#### 4"}\n' + line + "\n")
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        train.main(["--out_dir", str(out), *TINY, "--sft_data", data])
    assert str(e.value.code).startswith(f"error: {data} {message}")
    assert not out.exists()  # refused before anything was written


def test_sft_in_micro_batches_is_the_same_update(tmp_path):
    # 64 demonstrations a step through forward and backward 5 rows at a time (12 passes of 5 and
    # one of 4): each pass's loss is its share of the batch's mean, so the gradients add up to the
    # whole batch's and the SFT model is the same, to float rounding
    import torch
    whole, passes = str(tmp_path / "whole"), str(tmp_path / "passes")
    train.main(["--out_dir", whole, *TINY, "--rl_steps", "0"])
    train.main(["--out_dir", passes, *TINY, "--rl_steps", "0", "--micro_batch", "5"])
    a, b = Transformer.from_pretrained(os.path.join(whole, "sft")), Transformer.from_pretrained(os.path.join(passes, "sft"))
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x, y, atol=2e-5, rtol=0, msg=name)
    assert rows(passes, "train")[-1]["loss"] == pytest.approx(rows(whole, "train")[-1]["loss"], rel=1e-5)
