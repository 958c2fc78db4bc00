"""Many runs of one recipe: ``sweep`` (run them, skip finished runs, check configs),
``sweep_results`` (mean ± std curves, tables, the figure) and ``executors`` (where
the runs go: local processes or a Ray cluster).
"""
