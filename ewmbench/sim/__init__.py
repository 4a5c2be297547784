"""The physics-simulated dual-arm tabletop behind the ``sample`` dataset and the ``sim`` model.

Modules: :mod:`scene` (what is on the table, as data), :mod:`cameras` (head and wrist cameras,
intrinsics and extrinsics), :mod:`tasks` (task types, layouts, scripted plans, success checks),
:mod:`execute` (the one function that runs actions and renders views), :mod:`record` (one
episode and its sidecar), :mod:`sample` (the ``sample`` dataset: generated on first use, cached).
"""
