"""Closed-loop policy evaluation in a world model.

A policy (:mod:`policies`) sees the world model's current frames and state and answers with an
action chunk; the world model (:mod:`world`) renders the consequences; a judge (:mod:`judges`) says
whether the task succeeded. :mod:`rollout` runs that loop over a dataset's episodes and writes the
rollouts in the generated layout; :mod:`agreement` runs several policies in a world model and in
a reference simulator and measures how far the world model's verdicts can be trusted.
"""
