"""Comparing runs: statistics over episodes (bootstrap confidence intervals).

Light on purpose: numpy only, no torch, so leaderboards and reports run without the metrics
installed.
"""
