"""Comparing runs: the statistics (bootstrap CIs, paired tests, Holm) and the ablation report."""
