"""Leaderboards: a scoring rule kept as data, entries with provenance, safe intake, a static site.

A board is a folder (``leaderboards/<name>/``) holding ``rule.yaml`` and ``entries/*.json``.
Everything here reads run records and entry files; nothing imports torch or the metrics, so a
board can be checked and built on any machine. Re-scoring a submission runs the evaluation in the
command layer, which hands the resulting run record to :mod:`ewmbench.leaderboard.entries`.
"""
