"""Helpers the package shares: argument validation (``argument_validation``)."""
