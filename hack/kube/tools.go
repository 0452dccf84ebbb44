//go:build tools

// Package kube pins the Kubernetes control plane that drydock's Kubernetes
// tests run against: a real kube-apiserver, kube-controller-manager (for the
// deployment and replicaset controllers) and etcd, all on loopback and
// without nodes. It is a separate module so that k8s.io/kubernetes and etcd's
// server stay out of drydock's go.mod.
//
// The Makefile target kube-bins builds the three binaries once into
// $(DRYDOCK_CACHE)/kube-<version>/; `go install` is refused because of the
// replace directives, so it uses `go build` with the version ldflags.
package kube

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
