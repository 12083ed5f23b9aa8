"""The web process hides its /proc files (its environment) from the scripts it runs."""

import ctypes

from idp.migration import runtime

PR_GET_DUMPABLE = 3


def test_starting_the_pool_makes_this_process_undumpable(app):
    runtime.pool()
    assert ctypes.CDLL(None).prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0
