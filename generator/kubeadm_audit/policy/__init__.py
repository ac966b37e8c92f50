"""Audit policies: validation, evaluation, lint, log replay and matrices.

May import: errors, findings, versions, gotypes, flags (kube-apiserver's flag table), yamlio, and
each other. Not config, pipeline, targets or cli: a policy is checked the same wherever it is used.
Submodules are imported where they are used; this package file stays empty so importing one of
them costs nothing more.
"""
