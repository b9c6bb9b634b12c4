"""The study of what FlowRL does to the distribution over correct paths: python -m study.study."""
