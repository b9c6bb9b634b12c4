"""The machinery train.py stands on: its flags (training/flags.py), processes and loading
(training/launch.py), the files of a run (training/checkpoint.py), evaluation (training/evaluate.py),
what a step reports (training/monitor.py), chat templates (training/chat.py) and plots (training/plot.py)."""
