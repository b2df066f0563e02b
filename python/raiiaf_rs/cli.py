"""Console entry point of the ``raiiaf`` command (implemented in Rust)."""

from __future__ import annotations

import sys

from raiiaf_rs._raiiaf_rs import _cli_main


def main(argv: list[str] | None = None) -> int:
    """Run ``raiiaf`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    sys.stdout.flush()
    code = _cli_main(list(sys.argv[1:] if argv is None else argv))
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
