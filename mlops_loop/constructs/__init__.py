"""Constructs: each does one architectural job. Stacks compose them (see mlops_loop/stacks).

Note: this is ``mlops_loop.constructs``, a sub-package; the ``constructs`` library stays importable
as the top-level ``constructs`` because nothing at the top level shadows it.
"""
