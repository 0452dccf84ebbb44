#!/usr/bin/env bash
# Mutation testing of drydock's security- and correctness-critical code with
# go-gremlins: each mutant (a flipped comparison, a changed boundary, an
# arithmetic swap...) of a covered line must make the package's own tests
# fail. Prints, per package, the share of mutants killed. Not part of CI:
# CPU-heavy (one `go test` per mutant), so it runs one package at a time,
# at the lowest CPU priority (nice 19: it only takes idle CPU).
#
#   test/mutation/run.sh GREMLINS [SPEC...]
#
# A SPEC is a package directory, optionally with the files to mutate:
# internal/server:guard.go mutates only guard.go (the registry guard), and
# tests it with the whole package's tests; a trailing @REGEXP narrows the
# tests run (go test -run REGEXP, for the coverage run and for every
# mutant): internal/server:guard.go@^TestGuard mutates the registry guard
# and runs only its tests. Without SPECs, the default list.
# Results (gremlins' JSON) go to ${MUTATE_OUT:-$DRYDOCK_CACHE/mutation}.
# MUTATE_WORKERS (default 2) and MUTATE_TIMEOUT_COEFFICIENT (default 30:
# a mutant's test run may take 30 times the coverage run, which covers the
# rebuild of the module in gremlins' working copy on a loaded machine) are
# passed to gremlins. -trimpath makes the working copy's builds hit the
# build cache of the checkout's.
set -euo pipefail
# MUTATE_GOFLAGS adds flags to every build and test run, e.g. -short to
# leave out a package's network tests (internal/patch/apt).
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-trimpath${MUTATE_GOFLAGS:+ $MUTATE_GOFLAGS}"
gremlins=$1
shift
specs=("$@")
if [ ${#specs[@]} -eq 0 ]; then
	specs=(
		internal/gate
		internal/gatekeeper
		internal/store
		internal/auth
		internal/audit
		internal/server:guard.go@^TestGuard
		internal/patch/apt/dpkg:dpkgdb.go,unpack.go,unpackfinish.go
		internal/patch/sandbox
	)
fi
cd "$(dirname "$0")/../.."
out=${MUTATE_OUT:-${DRYDOCK_CACHE:-$HOME/.cache/drydock}/mutation}
mkdir -p "$out"
summary=()
for spec in "${specs[@]}"; do
	run=
	case $spec in *@*) run=${spec#*@} spec=${spec%%@*} ;; esac
	dir=${spec%%:*}
	excl=()
	if [ "$spec" != "$dir" ]; then
		keep=",${spec#*:},"
		# gremlins matches these against paths relative to the package.
		for f in "$dir"/*.go; do
			b=$(basename "$f")
			case $b in *_test.go) continue ;; esac
			case $keep in *",$b,"*) ;; *) excl+=(-E "(^|/)${b//./\\.}\$") ;; esac
		done
		for d in "$dir"/*/; do
			[ -d "$d" ] && excl+=(-E "(^|/)$(basename "$d")/")
		done
	fi
	name=$(echo "$spec" | tr '/:,' '___')
	echo "== mutating $spec${run:+ (tests: -run $run)}"
	start=$(date +%s)
	# go test reads test flags from GOFLAGS too (go build ignores them),
	# so -run reaches gremlins' coverage run and each mutant's test run.
	GOFLAGS="$GOFLAGS${run:+ -run=$run}" nice -n 19 "$gremlins" unleash --workers "${MUTATE_WORKERS:-2}" \
		--timeout-coefficient "${MUTATE_TIMEOUT_COEFFICIENT:-30}" \
		-o "$out/$name.json" "${excl[@]}" "./$dir" | tee "$out/$name.log" | grep -E '^(Killed|Mutator|Test efficacy)| LIVED | TIMED OUT ' || true
	line=$(python3 - "$out/$name.json" "$spec${run:+@$run}" "$(( $(date +%s) - start ))" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
st = {}
for f in d.get("files", []):
    for m in f.get("mutations", []):
        st[m["status"]] = st.get(m["status"], 0) + 1
killed, lived = st.get("KILLED", 0), st.get("LIVED", 0)
timed = st.get("TIMED OUT", 0)
total = killed + lived + timed
share = 100.0 * (killed + timed) / total if total else 0.0
print(f"{sys.argv[2]:<58} {killed:>5} killed {timed:>3} timed out {lived:>4} lived "
      f"{st.get('NOT COVERED', 0):>4} not covered  {share:6.1f}% killed  ({sys.argv[3]} s)")
PY
)
	summary+=("$line")
done
echo
echo "== share of covered mutants killed (a timed-out mutant counts as killed: the tests did not pass; see the log for each)"
printf '%s\n' "${summary[@]}"
