"""Audit policies: validation, evaluation, lint, log replay and matrices.

Submodules are imported where they are used; this package file stays empty so
importing one of them costs nothing more.
"""
