#!/usr/bin/env bash
# Patch time and peak memory of `drydock patch` on the bookworm-nginx test
# image with warm caches (goal: at most 5 s on 2 cores), split by phase,
# median of RUNS runs after an untimed warm-up:
#   1. --report naming libssl3, liblzma5, libpcre2-8-0 and perl-base (their
#      scripts are handled natively: no sandbox);
#   2. --update-all (the sandbox runs what must run).
# Then the peak RSS of patching that image plus a 1 GiB layer (goal: under
# 300 MB), from TestPatchLargeLayerMemory. Prints figures, asserts nothing.
# "write+other" is the command's total minus its phases: opening the input
# layout, writing the result into it, the summary.
#
#   bench/patch.sh [RUNS]        (default 3; needs root, jq and the mirror
#                                 the test images are built from)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
cache=${DRYDOCK_CACHE:-$HOME/.cache/drydock}
command -v jq >/dev/null || { echo "bench/patch.sh needs jq (apt-get install jq)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "host: $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
go build -o "$tmp/drydock" ./cmd/drydock
go run ./internal/testimage/cmd/build-testimages bookworm-nginx >&2
src=$cache/testimages/bookworm-nginx/oci
ref=bookworm-nginx

# Peak RSS: GNU time's when installed, else VmHWM sampled every 20 ms
# (may miss a peak in the last 20 ms).
if /usr/bin/time -v true >/dev/null 2>&1; then rss_how="GNU time"; else rss_how="sampled VmHWM"; fi

# measure OUT ARGS...: runs drydock patch ARGS on a fresh copy of the
# test image's layout, its JSON summary to OUT, its peak RSS (KiB) to OUT.rss.
measure() {
  local out=$1; shift
  rm -rf "$tmp/layout" && cp -a "$src" "$tmp/layout"
  local cmd=("$tmp/drydock" patch "oci:$tmp/layout:$ref" "$@" -t bench --format json)
  if [ "$rss_how" = "GNU time" ]; then
    if ! /usr/bin/time -v -o "$tmp/time.txt" "${cmd[@]}" >"$out" 2>"$tmp/stderr"; then
      cat "$tmp/stderr" "$tmp/time.txt" >&2; return 1
    fi
    awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/time.txt" >"$out.rss"
  else
    "${cmd[@]}" >"$out" 2>"$tmp/stderr" &
    local pid=$! peak=0 v
    while kill -0 "$pid" 2>/dev/null; do
      v=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
      [ -n "$v" ] && peak=$v
      sleep 0.02
    done
    wait "$pid" || { cat "$tmp/stderr" >&2; return 1; }
    echo "$peak" >"$out.rss"
  fi
}

# row: formats "name<TAB>number<TAB>unit<TAB>comment" lines.
row() {
  awk -F'\t' '{v = ($3 == "s") ? sprintf("%.3f", $2) : ($3 == "MiB") ? sprintf("%.1f", $2) : $2
                printf "  %-38s %10s %-3s  %s\n", $1, v, $3, $4}'
}

# bench LABEL ARGS...: a warm-up run, RUNS measured runs, the table.
bench() {
  local label=$1; shift
  echo
  echo "== $label: drydock patch ${*}  ($runs runs after a warm-up; median)"
  measure "$tmp/warm.json" "$@"
  : >"$tmp/runs.jsonl"
  for i in $(seq "$runs"); do
    measure "$tmp/run.json" "$@"
    jq -c --argjson rss "$(cat "$tmp/run.json.rss")" \
      '{p: .platforms[0].phase_seconds, total: .seconds, rss: $rss, pkgs: (.platforms[0].plan.changes | length), layer: .platforms[0].layer_size}' \
      "$tmp/run.json" >>"$tmp/runs.jsonl"
  done
  jq -rs --arg how "$rss_how" '
    def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    (map(.p + {"write+other": (.total - ([.p[]] | add)),
               "= build layer (unpack+scripts+layer)": (.p.unpack + .p.scripts + .p.layer)})) as $rows
    | ([.[].total] | median) as $t
    | (["read", "index", "resolve", "download", "unpack", "scripts", "layer", "write+other",
        "= build layer (unpack+scripts+layer)"][] as $k
       | [$k, ([$rows[] | .[$k] // 0] | median), "s", ""]),
      ["total", $t, "s", "runs \([.[].total | . * 100 | round / 100 | tostring] | join(", ")) s; goal <= 5 s: \(if $t <= 5 then "met" else "MISSED" end)"],
      ["peak RSS", (([.[].rss] | max) / 1024), "MiB", "max of the runs (\($how))"],
      ["packages", .[0].pkgs, "", "new layer \(.[0].layer) bytes compressed"]
    | @tsv
  ' "$tmp/runs.jsonl" | row
}

# The report: the four packages at the versions the mirror offers today.
rm -rf "$tmp/layout" && cp -a "$src" "$tmp/layout"
"$tmp/drydock" patch "oci:$tmp/layout:$ref" --update-all --dry-run --format json >"$tmp/plan.json" 2>"$tmp/stderr" ||
  { cat "$tmp/stderr" >&2; exit 1; }
jq '{SchemaVersion: 2, ArtifactName: "bookworm-nginx", ArtifactType: "container_image",
     Results: [{Target: "bookworm-nginx (debian 12)", Class: "os-pkgs", Type: "debian",
       Vulnerabilities: [.platforms[0].plan.changes[]
         | select(.package == "libssl3" or .package == "liblzma5" or .package == "libpcre2-8-0" or .package == "perl-base")
         | {VulnerabilityID: ("BENCH-" + .package), PkgName: .package, InstalledVersion: .from, FixedVersion: .to}]}]}' \
  "$tmp/plan.json" >"$tmp/report.json"
if [ "$(jq '.Results[0].Vulnerabilities | length' "$tmp/report.json")" = 0 ]; then
  echo "the mirror offers no update of libssl3, liblzma5, libpcre2-8-0 or perl-base for the test image" >&2
  exit 1
fi
echo "report: $(jq -r '[.Results[0].Vulnerabilities[] | .PkgName + " " + .FixedVersion] | join(", ")' "$tmp/report.json")"

bench "report, no sandbox" --report "$tmp/report.json" --sandbox never
bench "update-all, sandbox" --update-all

echo
echo "== 1 GiB layer: bookworm-nginx + 1 GiB of incompressible files, libssl3 from a report, result written to a new OCI layout"
DRYDOCK_BIG_TEST=1 DRYDOCK_BENCH_OUT=$tmp/big.json \
  go test -count=1 -timeout 30m -run '^TestPatchLargeLayerMemory$' ./internal/patch >"$tmp/big.txt" 2>&1 ||
  { cat "$tmp/big.txt" >&2; exit 1; }
[ -s "$tmp/big.json" ] || { cat "$tmp/big.txt" >&2; echo "TestPatchLargeLayerMemory wrote no result (skipped?)" >&2; exit 1; }
jq -r '
  ["peak RSS", .peak_rss_mib, "MiB", "\(.peak_rss_bytes / 1e6 | round) MB; goal < 300 MB: \(if .peak_rss_bytes < 300e6 then "met" else "MISSED" end)"],
  ["patch + write", .seconds, "s", (.phase_seconds | to_entries | map("\(.key) \(.value * 100 | round / 100)") | join(", "))],
  ["big layer, compressed", (.big_layer_bytes / 1048576), "MiB", "\(.packages) package(s) patched, new layer \(.layer_bytes) bytes"]
  | @tsv
' "$tmp/big.json" | row
echo
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
