"""training/plot.py: the curves of hand-written metrics.jsonl files become valid PNG files; a run
written before some metrics existed, a torn last line and a missing matplotlib are one line each."""
import json
import os
import sys

import pytest

pytest.importorskip("matplotlib")
from training.plot import EVAL, TRAIN, curve, main  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"  # the 8 bytes every PNG file starts with


def write_run(path, rows, tail=""):
    os.makedirs(path)
    with open(os.path.join(path, "metrics.jsonl"), "w") as f:
        f.write("".join(json.dumps(r) + "\n" for r in rows) + tail)
    return str(path)


def rl_row(step, **extra):
    return dict(phase="train", stage="rl", step=step, reward=0.1 * step, response_length=20 + step,
                grad_norm=1.0 / step, **extra)


# a FlowRL run as train.py writes it: SFT rows (12 steps), the SFT evaluation at SFT step 12,
# 3 RL steps with every metric, one RL evaluation at step 2
NEW = ([dict(phase="train", stage="sft", step=12, loss=2.4, grad_norm=1.5),
        dict(phase="eval", stage="sft", step=12, accuracy=0.25)]
       + [rl_row(s, entropy=1.0 - 0.1 * s, kl_ref=0.01 * s, delta_abs=0.5, log_z=0.2 * s) for s in (1, 2, 3)]
       + [dict(phase="eval", stage="rl", step=2, accuracy=0.5)])


def test_curve_puts_the_sft_evaluation_at_step_zero():
    # the eval rows: (stage sft, step 12, 0.25) -> (0, 0.25); (stage rl, step 2, 0.5) -> (2, 0.5)
    assert curve(NEW, "eval", "accuracy") == ([0, 2], [0.25, 0.5])
    # the train rows of stage rl only: the SFT row's grad_norm 1.5 is not on the RL curve; 1/1, 1/2, 1/3
    assert curve(NEW, "train", "grad_norm") == ([1, 2, 3], [1.0, 0.5, 1 / 3])


def test_runs_overlaid_one_png_per_metric(tmp_path, capsys):
    flowrl = write_run(tmp_path / "flowrl", NEW)
    grpo = write_run(tmp_path / "grpo", [rl_row(s, entropy=0.9, kl_ref=0.02) for s in (1, 2, 3)])
    written = main([flowrl, grpo, "--out", str(tmp_path / "plots")])
    assert sorted(os.path.basename(w) for w in written) == sorted(f"{k}.png" for k in TRAIN + EVAL)
    for w in written:
        with open(w, "rb") as f:
            assert f.read(8) == PNG
    out = capsys.readouterr().out
    assert f"delta_abs: not in {grpo}, plotted for the others" in out  # GRPO logs no delta or log Z


def test_an_old_run_without_the_new_keys(tmp_path, capsys):
    # written before entropy and kl_ref (and by GRPO: no delta_abs, no log_z), its last line torn
    old = write_run(tmp_path / "old", [rl_row(s) for s in (1, 2)] + [dict(phase="eval", stage="rl", step=2, accuracy=0.3)],
                    tail='{"phase": "train", "stage": "rl", "st')
    written = main([old, "--out", str(tmp_path / "plots")])
    assert sorted(os.path.basename(w) for w in written) == ["accuracy.png", "grad_norm.png", "response_length.png",
                                                            "reward.png"]
    out = capsys.readouterr().out
    assert f"{old}/metrics.jsonl line 4: not a JSON object, skipped" in out
    for key in ("entropy", "kl_ref", "delta_abs", "log_z"):
        assert f"{key}: in no run's train rows, skipped" in out


def test_missing_metrics_and_missing_matplotlib(tmp_path, monkeypatch):
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path / "nowhere")])
    assert e.value.code == f"error: {tmp_path / 'nowhere'}/metrics.jsonl: not found (is {tmp_path / 'nowhere'} a run's out_dir?)"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(SystemExit) as e:
        main([write_run(tmp_path / "run", NEW)])
    assert e.value.code == "error: training/plot.py draws with matplotlib: pip install matplotlib"
