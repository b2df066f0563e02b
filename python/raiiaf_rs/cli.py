"""Console entry point of the ``raiiaf`` command (implemented in Rust)."""

from __future__ import annotations

import json
import sys

from raiiaf_rs._extension import native
from raiiaf_rs.environment import host_facts


def main(argv: list[str] | None = None) -> int:
    """Run ``raiiaf`` with ``argv`` (default: ``sys.argv[1:]``); return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["query"], ["serve"]):
        # SQL over a catalog and the archive browser run here, in Python, with DuckDB;
        # everything else in Rust.
        if args[0] == "query":
            from raiiaf_rs.query import main as command
        else:
            from raiiaf_rs.serve import main as command

        code = command(args[1:])
        if argv is None:
            sys.exit(code)
        return code
    facts = None
    if args[:1] in (["env"], ["drift"]):
        # The environment as this Python would record it, torch included.
        facts = json.dumps(host_facts(import_torch=True))
    sys.stdout.flush()
    code = native._cli_main(args, facts)
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
