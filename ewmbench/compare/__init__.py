"""Comparing runs: the statistics (bootstrap CIs over episodes, paired tests, Holm) and the ablation report."""
