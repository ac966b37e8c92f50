"""``make docs``: write the documentation generated from the code (the lint check reference,
the ids generate reports).

tests/test_policy_lint_registry.py and tests/test_generate_findings.py fail when a committed
file differs from what this writes.
"""
from __future__ import annotations

import pathlib

from kubeadm_audit import targets
from kubeadm_audit.policy.lint import reference


def main() -> None:
    root = pathlib.Path(__file__).resolve().parents[1]
    (root / reference.PATH).write_text(reference.markdown(), encoding="utf-8")
    (root / targets.REFERENCE).write_text(targets.reference(), encoding="utf-8")


if __name__ == "__main__":
    main()
