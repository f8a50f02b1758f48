"""Session-wide test settings.

Property tests explore new random examples on every local run; CI sets ``HYPOTHESIS_PROFILE=ci`` (see
``.ci/run``) for a fixed, reproducible set, so a landing never hangs on a draw. A failure found locally is
added as an ``@example``.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
