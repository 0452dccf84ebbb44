#!/usr/bin/env bash
# Plant one mutant by hand, for the mutants gremlins lists as NOT COVERED
# (switch cases, closures) and to check that a new test kills a survivor:
#
#   test/mutation/plant.sh FILE OLD NEW [RUN]
#
# Run it in a copy of the tree (git archive HEAD | tar -x -C DIR), never in
# a checkout others build from: it replaces OLD (which must occur exactly
# once; NTH=n picks the n-th occurrence) by NEW in FILE, runs the tests of
# FILE's package (go test -run RUN, all when RUN is empty) at nice 10, and
# restores FILE. A test failure means the mutant is caught.
set -uo pipefail
f=$1 old=$2 new=$3 run=${4:-}
cp "$f" "$f.orig"
trap 'mv "$f.orig" "$f"' EXIT
python3 - "$f" "$old" "$new" <<'PY' || exit 2
import os, sys
p, o, n = sys.argv[1:4]
s = open(p).read()
k = int(os.environ.get("NTH", "0"))
if k == 0:
    if s.count(o) != 1:
        sys.exit(f"{p}: {o!r} occurs {s.count(o)} times (set NTH)")
    s = s.replace(o, n)
else:
    i = -1
    for _ in range(k):
        i = s.index(o, i + 1)
    s = s[:i] + n + s[i + len(o):]
open(p, "w").write(s)
PY
echo "== $f${NTH:+ (#$NTH)}: $old -> $new"
if nice -n 10 go test -count=1 ${run:+-run "$run"} "./$(dirname "$f")/"; then
	echo "LIVED"
else
	echo "CAUGHT"
fi
