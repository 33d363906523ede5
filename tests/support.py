"""What every test suite shares: a tool may be missing on a laptop, never in CI."""
import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(reason):
    """Skip when this machine lacks something; fail in CI, where everything must run."""
    if IN_CI:
        pytest.fail(reason)
    pytest.skip(reason)
