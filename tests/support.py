"""What every test suite shares: a tool may be missing on a laptop, never in CI."""
import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# The one exception to "nothing skips in CI": .ci/run's no-browser
# configuration hides the browser on purpose, to prove that everything else
# passes without one and that the browser tests skip with their hint.
CI_HIDES_THE_BROWSER = os.environ.get("CI_HIDES_THE_BROWSER", "") == "1"


def skip_or_fail(reason, allowed_in_ci=False):
    """Skip when this machine lacks something; fail in CI, where everything must
    run (unless CI removed that thing on purpose: allowed_in_ci)."""
    if IN_CI and not allowed_in_ci:
        pytest.fail(reason)
    pytest.skip(reason)
