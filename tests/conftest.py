"""Shared by the tests in this folder: ROOT, the repository's root, on sys.path so that the tests
import the project's modules whichever directory pytest runs from; TINY, the flags of a short
run; snapshot, every file of a run; the fixtures finished (a TINY run) and run (a fresh copy of it)."""
import os
import shutil
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
import train  # noqa: E402  (once ROOT is on sys.path)

# a run of a few seconds: 12 SFT steps, 4 RL steps of 2 prompts x 4 responses, evaluated every 2
TINY = ["--sft_steps", "12", "--rl_steps", "4", "--eval_interval", "2", "--prompts_per_step", "2",
        "--group_size", "4", "--eval_prompts", "3", "--eval_samples", "4", "--max_new_tokens", "24"]


TIMING = ("tokens_per_s", "step_s", "eta_s", "mfu")  # the metrics a rerun does not repeat: they are clock times


def snapshot(out):
    """Every file of a run, path -> bytes: to show that nothing was touched."""
    files = {}
    for root, _, names in os.walk(out):
        for n in names:
            with open(os.path.join(root, n), "rb") as f:
                files[os.path.relpath(os.path.join(root, n), out)] = f.read()
    return files


def tiny_qwen2(path, tok, layers=2):
    """A random Qwen2 checkpoint saved by transformers in path, with tok's vocabulary (eos id 1),
    and tok saved beside it: a real HF directory for train.py and eval.py to load."""
    import torch
    transformers = pytest.importorskip("transformers")
    cfg = transformers.Qwen2Config(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                                   max_position_embeddings=128, tie_word_embeddings=True, eos_token_id=1)
    torch.manual_seed(0)
    transformers.Qwen2ForCausalLM(cfg).save_pretrained(path)
    tok.save(os.path.join(str(path), "tokenizer.json"))
    return str(path)


def pytest_configure(config):
    # tests/test_cuda.py: the cuda path, skipped where torch sees no GPU; `-m cuda` selects them
    config.addinivalue_line("markers", "cuda: runs on a GPU (skipped without one)")


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A TINY run, finished: each test module gets its own."""
    out = str(tmp_path_factory.mktemp("finished") / "run")
    train.main(["--out_dir", out, *TINY])
    return out


@pytest.fixture
def run(finished, tmp_path):
    """A fresh copy of a finished run, to be attacked."""
    out = str(tmp_path / "run")
    shutil.copytree(finished, out)
    return out
