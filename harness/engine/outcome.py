"""The one failure and interrupt policy of tune, confirmation and ablate: exit 0 when every trial ended,
1 when all of them failed (ablate: when runs are missing), 130 when the driver was interrupted (Ctrl-C)
first, with `interrupted: ...; resume with: COMMAND`."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

INTERRUPTED_RC = 130


def fit(tuner):
    """Run the Tuner; its `ResultGrid`, or None when a second Ctrl-C cut Ray's own stopping short.

    A first Ctrl-C makes Ray stop the trials and return normally: the results say what ended."""
    try:
        return tuner.fit()
    except KeyboardInterrupt:
        return None


@contextmanager
def resume_hint_on_failure(hint: str) -> Iterator[None]:
    """Print the resume command when the driver fails on a bug: what finished is kept, the rest can be
    resumed. A `UserError` stays its one line (the CLI prints it) and Ctrl-C has its own report."""
    from ..errors import UserError

    try:
        yield
    except (KeyboardInterrupt, UserError):
        raise
    except BaseException:
        print(f"interrupted by the error below; resume with: {hint}", file=sys.stderr)
        raise
