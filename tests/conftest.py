"""Shared by the tests in this folder: ROOT, the repository's root, on sys.path so that the tests
import the project's modules whichever directory pytest runs from."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def pytest_configure(config):
    # tests/test_cuda.py: the cuda path, skipped where torch sees no GPU; `-m cuda` selects them
    config.addinivalue_line("markers", "cuda: runs on a GPU (skipped without one)")
