#!/usr/bin/env bash
# Build the Kubernetes control plane the tests use (kube-apiserver,
# kube-controller-manager, etcd) into $1, once. About 10 minutes and 2.9 GB
# of memory cold on two cores; later runs find the binaries and return at
# once. Each binary is built under a temporary name and renamed into place,
# so an interrupted build never leaves a half-written binary behind.
set -euo pipefail
out=${1:?usage: build.sh OUTDIR}
cd "$(dirname "$0")"
kver=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
minor=$(echo "$kver" | cut -d. -f2)
cv=k8s.io/component-base/version
ldflags="-s -w -X $cv.gitVersion=$kver -X $cv.gitMajor=1 -X $cv.gitMinor=$minor -X $cv.gitTreeState=clean"
mkdir -p "$out"
build() { # name package
	if [ -x "$out/$1" ]; then return; fi
	echo "kube-bins: building $1 ($2) into $out"
	go build -trimpath -ldflags "$ldflags" -o "$out/.$1.tmp" "$2"
	mv "$out/.$1.tmp" "$out/$1"
}
build etcd go.etcd.io/etcd/server/v3
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
build kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
