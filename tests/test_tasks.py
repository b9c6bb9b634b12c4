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
    (["--task", "countdown"], "--task countdown needs --init_from: SFT exists only for the built-in sums task"),
    (["--task", "math", "--init_from", "x"], "--task math needs --data"),
    (["--task", "sums", "--data", "x.jsonl"], "--data needs --init_from"),
    (["--task", "sums", "--data", "x.jsonl", "--init_from", "x"], "--task sums makes its own problems"),
    (["--format_score", "2"], "--format_score must be in [0, 1], got 2.0"),
    (["--countdown_numbers", "6"], "--countdown_numbers 6: at most 5"),
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
