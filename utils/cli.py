"""Entry-point wrapper: user mistakes become one sentence on stderr and exit status 2."""

from __future__ import annotations

import sys
from collections.abc import Callable

from utils.errors import UserError


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run `main(argv)`; print a UserError as `error: <sentence>` and return 2."""
    try:
        code = main(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
