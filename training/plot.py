"""
The standard curves of one or more runs, overlaid and labelled by their directory, one PNG each:

    python -m training.plot out                                 # plots/*.png
    python -m training.plot out/flowrl out/grpo --out plots/cmp

From each run's metrics.jsonl: the RL training rows (phase "train", stage "rl") give reward,
response_length, entropy, kl_ref, delta_abs and log_z (FlowRL only) and grad_norm against the RL
step; the evaluation rows (phase "eval") give accuracy, with the SFT model's evaluation (stage
"sft") drawn at RL step 0, where RL starts from it. A metric that no run logged (a run written
before it existed, or GRPO's missing log_z) is skipped with one printed line, never an error.
A line that is not JSON (the last line of a run being written) is skipped the same way.
matplotlib is needed here alone (requirements-dev.txt).
"""
import argparse
import json
import math
import os
import sys

TRAIN = ("reward", "response_length", "entropy", "kl_ref", "delta_abs", "log_z", "grad_norm")
EVAL = ("accuracy",)


def read_rows(run):
    """The JSON objects of run/metrics.jsonl; lines that are not one are skipped, with a line saying so."""
    file = os.path.join(run, "metrics.jsonl")
    if not os.path.isfile(file):
        raise FileNotFoundError(f"{file}: not found (is {run} a run's out_dir?)")
    rows = []
    with open(file, encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f, 1):
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if isinstance(row, dict):
                rows.append(row)
            elif line.strip():
                print(f"{file} line {i}: not a JSON object, skipped")
    return rows


def curve(rows, phase, key):
    """(steps, values) of key in the rows of phase: RL training rows, or evaluations with the
    SFT evaluation at step 0. Rows without the key, or with a value that is not a number, are left out."""
    def number(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool)
    points = []
    for row in rows:
        value, step = row.get(key), row.get("step")
        if row.get("phase") != phase or not number(value) or not number(step):
            continue
        if phase == "train" and row.get("stage") == "rl":
            points.append((step, value))
        elif phase == "eval":
            points.append((0 if row.get("stage") == "sft" else step, value))
    return [s for s, _ in points], [v for _, v in points]


def plot(runs, out):
    """One PNG per metric that some run has, in out; returns their paths."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("training/plot.py draws with matplotlib: pip install matplotlib") from None
    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    rows = {run: read_rows(run) for run in runs}
    os.makedirs(out, exist_ok=True)
    written = []
    for phase, keys in (("train", TRAIN), ("eval", EVAL)):
        for key in keys:
            curves = {run: curve(r, phase, key) for run, r in rows.items()}
            missing = [run for run, (steps, _) in curves.items() if not steps]
            if len(missing) == len(runs):
                print(f"{key}: in no run's {phase} rows, skipped")
                continue
            if missing:
                print(f"{key}: not in {', '.join(missing)}, plotted for the others")
            fig, ax = plt.subplots(figsize=(6, 4))
            for run, (steps, values) in curves.items():
                if steps:
                    ax.plot(steps, values, marker="o" if phase == "eval" else None, ms=3, label=os.path.normpath(run))
            ax.set_xlabel("RL step")
            ax.set_ylabel(key)
            ax.set_title(f"{key} ({'evaluation, SFT at step 0' if phase == 'eval' else 'RL training steps'})",
                         fontsize=9)
            if any(not math.isfinite(v) for _, values in curves.values() for v in values):
                print(f"{key}: some values are not finite, left as gaps")
            ax.legend(fontsize=7)
            fig.tight_layout()
            path = os.path.join(out, f"{key}.png")
            fig.savefig(path, dpi=100)
            plt.close(fig)
            written.append(path)
    return written


def main(argv=None):
    p = argparse.ArgumentParser(description="Training curves of runs, overlaid (training/plot.py's docstring).")
    p.error = lambda message: sys.exit(f"error: {message}")  # one line, no usage block
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="out_dirs holding metrics.jsonl")
    p.add_argument("--out", default="plots", help="where the PNG files go")
    args = p.parse_args(argv)
    try:
        written = plot(args.runs, args.out)
    except (ImportError, OSError) as e:
        sys.exit(f"error: {e}")
    print(f"wrote {len(written)} plots to {args.out}: " + ", ".join(os.path.basename(w) for w in written))
    return written


if __name__ == "__main__":
    main()
