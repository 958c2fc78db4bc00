"""Many runs of one recipe: ``sweep`` (skip finished runs, check configs, mean ± std
tables) and ``executors`` (where the runs go: local processes or a Ray cluster).
"""
