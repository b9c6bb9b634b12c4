"""The machinery train.py stands on: its flags, processes and loading (training/launch.py), and the files of a run
(training/checkpoint.py)."""
