#!/usr/bin/env bash
# Push and pull throughput of a 100 MiB, 5-layer image over loopback, and the
# server's peak memory, for drydock and for the stock distribution registry
# (v3.1.2, its default filesystem configuration). Prints Go benchmark lines:
# MB/s is throughput, peak-RSS-MiB the server process's VmHWM.
#
#   bench/registry.sh [go test flags, e.g. -benchtime 10x -count 3]
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${DRYDOCK_CACHE:-$HOME/.cache/drydock}/tools
mkdir -p "$cache"
stock=$cache/stockregistry-v3.1.2
if [ ! -x "$stock" ]; then
  echo "building the stock distribution registry (once, about 3 minutes)..." >&2
  (cd hack/stockregistry && go build -o "$stock.tmp" github.com/distribution/distribution/v3/cmd/registry)
  mv "$stock.tmp" "$stock"
fi
go build -o "$cache/drydock-bench" ./cmd/drydock
DRYDOCK_BIN=$cache/drydock-bench STOCK_REGISTRY_BIN=$stock \
  go test ./bench -run '^$' -bench Registry -benchtime 5x "$@"
