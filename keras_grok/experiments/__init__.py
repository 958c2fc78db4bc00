"""Experiments as recipes run them: the recipe contract (``recipe``), the checks of
recipe configs (``config_checks``) and builders of the papers' experiments from a
config (``image_grokking``: paper A's image grokking run).
"""
