#!/usr/bin/env python3
"""Count the results in a Meson testlog.json (one JSON object per line).

Prints "PASSED FAILED SKIPPED" on the first line, then one line per test that
did not pass ("RESULT name"). Passed: OK and EXPECTEDFAIL; skipped: SKIP (exit
77); everything else (FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS) failed.
"""
import json
import sys


def main() -> int:
    passed = failed = skipped = 0
    bad = []
    with open(sys.argv[1], encoding="utf-8") as log:
        for line in log:
            line = line.strip()
            if not line:
                continue
            test = json.loads(line)
            result = test.get("result", "ERROR")
            if result in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif result == "SKIP":
                skipped += 1
            else:
                failed += 1
                bad.append(f"{result} {test.get('name', '?')}")
    print(passed, failed, skipped)
    for entry in bad:
        print(entry)
    return 0


if __name__ == "__main__":
    sys.exit(main())
