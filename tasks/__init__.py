"""The problems RL learns on: the toy sums task and its exact path metrics, a JSONL file of math problems, and the grader of math answers."""
