"""Runs a compatibility test's checks in order: every failure is reported, then the
process exits non-zero if any failed (the suites here are plain functions, no pytest)."""

import sys
import time


def run(tests, label):
    failed = 0
    for test in tests:
        started = time.time()
        try:
            test()
            print(f"ok   {test.__name__} ({time.time() - started:.1f} s)")
        except Exception as e:  # report every failure, then exit non-zero
            failed += 1
            print(f"FAIL {test.__name__}: {type(e).__name__}: {e}")
    print(f"{label}: {len(tests) - failed}/{len(tests)} passed")
    sys.exit(1 if failed else 0)
