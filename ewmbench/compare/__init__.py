"""Comparing runs: the statistics (bootstrap CIs over episodes, paired tests, Holm) and the ablation report.

``ewmbench.compare`` is both this package and the function :func:`ewmbench.compare.api.compare`:
importing a submodule binds the package over any function of that name on ``ewmbench``, so the
package itself is made callable and forwards to its own submodule (never up to :mod:`ewmbench.api`). Light on purpose: numpy, scipy and pandas;
no torch.
"""

from __future__ import annotations

import sys
import types


class _CallablePackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from ewmbench.compare.api import compare

        return compare(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
