"""Entry-point wrapper: user mistakes become one sentence on stderr and exit status 2."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from utils.errors import UserError

# TensorFlow's C++ log lines ("failed call to cuInit", "NodeDef mentions attribute ...") read
# as errors on a CPU-only machine; SAUNETV2_TF_LOGS=1 keeps them.
TF_LOGS_ENV = "SAUNETV2_TF_LOGS"


def tensorflow_logs_wanted() -> bool:
    """True when the user asked for TensorFlow's C++ log lines ($SAUNETV2_TF_LOGS=1)."""
    return os.environ.get(TF_LOGS_ENV, "0").strip() not in ("", "0")


def quiet_tensorflow_logs() -> None:
    """Hide TensorFlow's C++ log lines (set before TensorFlow is imported) unless the user asked
    for them ($SAUNETV2_TF_LOGS=1) or set TF_CPP_MIN_LOG_LEVEL themselves."""
    if not tensorflow_logs_wanted():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def import_tensorflow_quietly() -> None:
    """Import TensorFlow with the process's stderr closed, unless its logs are wanted.

    Lines written while TensorFlow loads ("All log messages before
    absl::InitializeLog() ...", "Could not find cuda drivers ...") ignore
    TF_CPP_MIN_LOG_LEVEL. A failed import is left to the caller's own import,
    which then shows the error.
    """
    import importlib.util

    if tensorflow_logs_wanted() or "tensorflow" in sys.modules:
        return
    if importlib.util.find_spec("tensorflow") is None:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        try:
            import tensorflow  # noqa: F401
        except Exception:  # noqa: BLE001 - imported again, loudly, by the caller
            pass
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run `main(argv)`; print a UserError as `error: <sentence>` and return 2.

    TensorFlow's C++ log lines are hidden first (`quiet_tensorflow_logs`).
    """
    quiet_tensorflow_logs()
    try:
        code = main(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)
