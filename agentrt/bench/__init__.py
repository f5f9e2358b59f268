"""Benchmarks behind `agentrt bench ...`: each measures ours against a baseline in one run."""
