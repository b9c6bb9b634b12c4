"""eval.py: pass@k against hand derivations, the exact binomial formula and exact fractions;
eval.py end to end on a tiny toy checkpoint (the conftest TINY run) and on a random Hugging Face
Qwen2 directory with a JSONL math file; bad input as one line naming the flag, file or line."""
import json
import math
import os
import shutil
import subprocess
import sys
from fractions import Fraction

import pytest
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from conftest import ROOT
from eval import main, pass_at_k

TOY = ["--problems", "3", "--n", "4", "--max_new_tokens", "24", "--batch", "5"]
PROBLEMS = [("12+30", "12+30=42 #### 42"), ("41+17", "58"), ("25+25", "#### 50"), ("60+33", "93"), ("7+9", "16")]


# pass@k = 1 - C(n - c, k) / C(n, k): the chance that k samples drawn without replacement from
# n, c of them correct, hold at least one correct one. The product form used by pass_at_k:
#   C(n - c, k) / C(n, k) = (n - c)! (n - k)! / (n! (n - c - k)!) = prod_{i = n - c + 1}^{n} (i - k) / i
def test_pass_at_k_by_hand():
    # n=4, c=1, k=2: 1 - C(3,2)/C(4,2) = 1 - 3/6 = 0.5; the product: 1 - (1 - 2/4) = 0.5
    assert pass_at_k(4, 1, 2) == pytest.approx(0.5, abs=1e-15)
    # n=5, c=2, k=3: 1 - C(3,3)/C(5,3) = 1 - 1/10 = 0.9; the product: 1 - (1 - 3/4)(1 - 3/5) = 1 - (1/4)(2/5)
    assert pass_at_k(5, 2, 3) == pytest.approx(0.9, abs=1e-15)
    # k=1 is the fraction correct: 1 - C(n-c,1)/C(n,1) = 1 - (n-c)/n = c/n; n=5, c=2: 0.4
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4, abs=1e-15)
    # c=0: C(n,k)/C(n,k) = 1, so pass@k = 0 for every k (the product over no i is 1)
    assert [pass_at_k(16, 0, k) for k in (1, 2, 4, 8, 16)] == [0.0] * 5
    # c=n: C(0,k) = 0 for k >= 1, so pass@k = 1
    assert [pass_at_k(16, 16, k) for k in (1, 2, 4, 8, 16)] == [1.0] * 5
    # k=n: all n samples are drawn, so one correct sample is enough: C(n-c,n) = 0 for c >= 1
    assert pass_at_k(16, 1, 16) == 1.0 and pass_at_k(16, 0, 16) == 0.0
    # n=16, c=1, k=8: a single correct sample is among 8 of 16 with chance 8/16 = 0.5
    assert pass_at_k(16, 1, 8) == pytest.approx(0.5, abs=1e-15)


def test_pass_at_k_matches_the_binomial_formula():
    for n in range(1, 21):
        for c in range(n + 1):
            for k in range(1, n + 1):
                exact = 1 - math.comb(n - c, k) / math.comb(n, k)
                assert pass_at_k(n, c, k) == pytest.approx(exact, abs=1e-12), (n, c, k)


def test_pass_at_k_is_stable_for_large_n():
    # C(256, 128) is about 5.8e75, C(2048, 1024) about 1e615, beyond a float; the product form
    # forms no binomial, and agrees with exact fractions of the integer binomials
    for n, c, k in [(256, 1, 1), (256, 1, 128), (256, 3, 200), (256, 128, 64), (256, 255, 2), (2048, 3, 1024)]:
        exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))
        assert abs(pass_at_k(n, c, k) - exact) < 1e-12, (n, c, k)
    with pytest.raises(OverflowError):  # what the direct formula meets at n = 2048
        float(math.comb(2048, 1024))


@pytest.mark.parametrize("n, c, k", [(4, 5, 1), (4, -1, 1), (4, 1, 0), (4, 1, 5)])
def test_pass_at_k_refuses_impossible_counts(n, c, k):
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_at_k(n, c, k)


@pytest.fixture(scope="module")
def toy(finished, tmp_path_factory):
    """The TINY run's checkpoint evaluated twice, with --ref its SFT model and without, scored by a
    reward of the text's length parity: after 12 SFT steps the sums reward is 0 everywhere, and
    a mix of 0 and 1 makes pass@k worth checking."""
    tmp = tmp_path_factory.mktemp("eval_toy")
    (tmp / "parity.py").write_text("def even(completion, gold):\n    return float(len(completion) % 2 == 0)\n")
    common = ["--model", os.path.join(finished, "ckpt"), *TOY, "--reward", f"{tmp / 'parity.py'}:even"]
    with_ref = main([*common, "--ref", os.path.join(finished, "sft"), "--out", str(tmp / "a.jsonl")])
    alone = main([*common, "--out", str(tmp / "b.jsonl")])
    return dict(tmp=tmp, common=common, with_ref=with_ref, alone=alone,
                rows=[json.loads(line) for line in (tmp / "a.jsonl").read_text().splitlines()])


def test_toy_summary(toy):
    s = toy["alone"]
    assert {"model", "data", "task", "problems", "n", "temperature", "top_p", "top_k", "accuracy", "pass@k",
            "paths_mass", "paths_effective", "paths_top_share", "paths_kl_ref", "paths_count"} <= set(s)
    assert (s["task"], s["problems"], s["n"], s["temperature"], s["top_p"], s["top_k"]) == ("sums", 3, 4, 0.6, 0.95, 0)
    assert list(s["pass@k"]) == ["1", "2", "4"]  # 1, 2, 4, ... up to n = 4
    with open(toy["tmp"] / "b.jsonl.summary.json") as f:
        assert json.load(f) == s


def test_toy_rows_accuracy_and_pass_at_k(toy):
    rows, s = toy["rows"], toy["alone"]
    assert len(rows) == 3 and all(len(r["completions"]) == len(r["rewards"]) == 4 for r in rows)
    assert all(r["prompt"] == r["question"] + "\n" for r in rows)  # the toy's template, "{question}\n"
    rewards = [x for r in rows for x in r["rewards"]]
    assert 0 < sum(rewards) < len(rewards)  # a mix, so the checks below are not 0 == 0
    assert s["accuracy"] == pytest.approx(sum(rewards) / len(rewards), abs=1e-12)  # Avg@n: the mean of 0/1 rewards
    assert s["pass@k"]["1"] == pytest.approx(s["accuracy"], abs=1e-12)  # pass@1 = c/n, averaged
    for k, value in s["pass@k"].items():
        by_hand = sum(pass_at_k(4, int(sum(r["rewards"])), int(k)) for r in rows) / 3
        assert value == pytest.approx(by_hand, abs=1e-12)
    assert s["pass@k"]["1"] <= s["pass@k"]["2"] <= s["pass@k"]["4"]


def test_toy_is_deterministic_and_path_metrics_follow_ref(toy):
    # --ref changes only the path metrics' reference: the samples, seeded by --seed, are the same
    tmp, a, b = toy["tmp"], toy["with_ref"], toy["alone"]
    assert (tmp / "a.jsonl").read_bytes() == (tmp / "b.jsonl").read_bytes()
    assert b["paths_kl_ref"] == 0.0  # against itself, q == q_ref
    assert a["paths_kl_ref"] > 0  # 4 RL steps moved the model off its SFT start
    assert a["paths_effective"] == b["paths_effective"] and a["paths_ref"].endswith("sft")
    other = main([*toy["common"], "--seed", "1", "--out", str(tmp / "c.jsonl")])
    assert (tmp / "c.jsonl").read_bytes() != (tmp / "b.jsonl").read_bytes() and other["seed"] == 1


def char_tokenizer(texts):
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r".|\n"), "isolated")  # one token per character
    tok.decoder = decoders.Fuse()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=["<pad>", "<eos>", "<unk>"]))
    return tok


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    """A random 2-layer Qwen2 directory saved by transformers, a character tokenizer, and a JSONL
    math file of len(PROBLEMS) lines."""
    from conftest import tiny_qwen2
    tmp = tmp_path_factory.mktemp("eval_hf")
    tiny_qwen2(tmp / "model", char_tokenizer(["Q: A: 0123456789+=#\n"]))
    (tmp / "math.jsonl").write_text("".join(json.dumps({"question": q, "answer": a}) + "\n" for q, a in PROBLEMS))
    return dict(model=str(tmp / "model"), data=str(tmp / "math.jsonl"), tmp=tmp)


def test_hf_qwen2_with_jsonl_math(hf):
    out = str(hf["tmp"] / "math_eval.jsonl")
    s = main(["--model", hf["model"], "--data", hf["data"], "--n", "3", "--max_new_tokens", "8",
              "--prompt_template", "Q: {question}\nA: ", "--out", out])
    rows = [json.loads(line) for line in open(out)]
    assert [(r["question"], r["answer"]) for r in rows] == PROBLEMS  # every line of the file, in order
    assert rows[0]["prompt"] == "Q: 12+30\nA: "
    assert (s["task"], s["data"], s["problems"]) == ("math", hf["data"], 5)
    assert list(s["pass@k"]) == ["1", "2", "3"]  # 1, 2 and then n = 3 itself
    assert not any(k.startswith("paths_") for k in s)  # path metrics exist on the sums task only
    rewards = [x for r in rows for x in r["rewards"]]
    assert s["accuracy"] == pytest.approx(sum(rewards) / len(rewards)) and len(rewards) == 15


def test_hf_chat_template_builds_the_prompt(hf, tmp_path):
    # without --prompt_template, load_model's Codec renders the checkpoint's chat template
    model = str(tmp_path / "chat")
    shutil.copytree(hf["model"], model)
    with open(os.path.join(model, "chat_template.jinja"), "w") as f:
        # transformers renders with trim_blocks: a newline right after a {% ... %} tag is dropped
        f.write("{% for m in messages %}Q: {{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}A: {% endif %}")
    main(["--model", model, "--data", hf["data"], "--n", "1", "--max_new_tokens", "4", "--problems", "2",
          "--out", str(tmp_path / "e.jsonl")])
    rows = [json.loads(line) for line in open(tmp_path / "e.jsonl")]
    assert [r["prompt"] for r in rows] == ["Q: 12+30\nA: ", "Q: 41+17\nA: "]


@pytest.mark.parametrize("flags, message", [
    (["--n", "0"], "error: argument --n: must be at least 1, got 0"),
    (["--n", "4", "--k", "8"], "error: --k 8: pass@k needs 1 <= k <= n, and --n 4 samples a problem give at most k = 4"),
    (["--k", "1,x"], "error: --k 1,x: expected integers separated by commas"),
    (["--top_p", "0"], "error: --top_p 0.0: must be in (0, 1]"),
    (["--task", "math"], "error: --task math needs --data"),
    (["--problems", "501"], "error: --problems 501: the toy task holds out at most 500"),
    (["--task", "countdown", "--countdown_format", "derivation", "--data", "{data}"],
     "error: --task countdown makes its own problems: --data is for math or countdown --countdown_format answer"),
    (["--data", "{data}", "--ref", "{model}"], "error: --ref {model}: the exact metrics exist only on the toy tasks"),
    (["--out", "{tmp}/missing/e.jsonl"], "error: --out {tmp}/missing/e.jsonl: its directory does not exist"),
    (["--data", "{tmp}/bad.jsonl"], "error: {tmp}/bad.jsonl line 2: invalid JSON"),
    (["--data", "{tmp}/bad.jsonl", "--task", "countdown"], "error: {tmp}/bad.jsonl line 1: 'nums' must be a list"),
])
def test_bad_input_is_one_line(hf, tmp_path, flags, message):
    (tmp_path / "bad.jsonl").write_text('{"question": "1+1", "answer": "2"}\n{"question": "2+2"\n')
    fill = dict(model=hf["model"], data=hf["data"], tmp=str(tmp_path))
    argv = ["--model", hf["model"], "--max_new_tokens", "4", "--out", str(tmp_path / "e.jsonl")]
    with pytest.raises(SystemExit) as e:
        main(argv + [f.format(**fill) for f in flags])
    assert str(e.value.code).startswith(message.format(**fill)) and "\n" not in str(e.value.code)
    assert os.listdir(tmp_path) == ["bad.jsonl"]  # no half-written --out


def test_missing_model_dir_from_the_shell(tmp_path):
    p = subprocess.run([sys.executable, os.path.join(ROOT, "eval.py"), "--model", str(tmp_path / "nope"),
                        "--out", str(tmp_path / "e.jsonl")], capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr == f"error: --model {tmp_path / 'nope'}: not a directory (expected an HF-format model directory)\n"
    assert os.listdir(tmp_path) == []


def test_toy_countdown_reports_the_solution_metrics(tmp_path):
    # a model trained from scratch on toy Countdown for a few steps: eval.py reports the exact
    # solution-level metrics on the held-out problems, against the model itself (KL 0)
    import train
    from conftest import TINY
    out = str(tmp_path / "run")
    train.main(["--out_dir", out, "--task", "countdown", *TINY, "--rl_steps", "0"])
    summary = main(["--model", os.path.join(out, "sft"), "--task", "countdown", "--problems", "2", "--n", "2",
                            "--out", str(tmp_path / "e.jsonl")])
    assert summary["solutions_kl_ref"] == 0.0 and summary["solutions_count"] >= 1
    assert 0 <= summary["pass_exact_at_1"] <= summary["pass_exact_at_256"] <= 1
