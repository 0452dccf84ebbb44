# drydock — build, run and test.
#
#   make run     start `drydock serve` with the embedded defaults
#   make test    install what the tests need (Debian packages), build the
#                test images from the machine's Debian mirror, run every test
#   make mutate  mutation testing of the critical packages (not in CI)
#
# Build products that are slow to make (test images, the conformance suite,
# staticcheck) are cached under $(DRYDOCK_CACHE) and rebuilt only when missing.

SHELL := /bin/bash
GO ?= go
export DRYDOCK_CACHE ?= $(HOME)/.cache/drydock
TOOLS := $(DRYDOCK_CACHE)/tools
STATICCHECK_VERSION := v0.8.2
GREMLINS_VERSION := v0.6.0
# Debian packages the tests use: debootstrap and mmdebstrap build the test
# images, skopeo/podman/runc are the standard clients the tests compare with,
# rpm/rpmbuild make real rpm databases for the inventory tests,
# distro-info-data tells the patcher which releases have reached end-of-life;
# bzip2 makes .deb members Go cannot compress, openssl is the subject-hash
# oracle, debian-archive-keyring verifies the distroless images' indexes;
# postgresql is the real server the stores' conformance suites and the
# replica tests run against (internal/database/pgtest starts it);
# uidmap (newuidmap, newgidmap) maps subordinate ids into the rootless patch sandbox;
# chromium is the browser the web UI's tests drive (internal/web, chromedp);
# softhsm2 is the PKCS#11 token the HSM signing tests keep their keys on.
TEST_DEBS := debootstrap mmdebstrap skopeo podman runc rpm ca-certificates xz-utils zstd distro-info-data \
	bzip2 openssl debian-archive-keyring postgresql uidmap chromium softhsm2

.PHONY: all build run test deps axe testimages kube-bins lint unit trivycompat bench bench-patch bench-gate bench-limits bench-workflow bench-kube bench-ui clean-cache mutate s3server signtools

all: build

build:
	$(GO) build -o bin/drydock ./cmd/drydock

run:
	$(GO) run ./cmd/drydock serve

test: deps lint testimages kube-bins s3server signtools axe unit trivycompat

# Install missing Debian packages (needs root or sudo; otherwise the tests
# that need them skip with a reason).
deps:
	@missing=""; for p in $(TEST_DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "deps: all present"; exit 0; fi; \
	SUDO=""; if [ "$$(id -u)" != 0 ]; then if command -v sudo >/dev/null; then SUDO=sudo; else echo "deps: missing$$missing and not root: tests that need them will skip"; exit 0; fi; fi; \
	echo "deps: installing$$missing"; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing

testimages:
	$(GO) run ./internal/testimage/cmd/build-testimages

# The Kubernetes control plane the kube tests run against (kube-apiserver,
# kube-controller-manager, etcd; no nodes), built from hack/kube, a separate
# module so that k8s.io/kubernetes stays out of drydock's go.mod. About
# 10 minutes and 2.9 GB of memory the first time, then cached.
KUBE_VERSION := v1.37.2
export DRYDOCK_KUBE_BIN ?= $(DRYDOCK_CACHE)/kube-$(KUBE_VERSION)
kube-bins:
	@nice -n 10 ./hack/kube/build.sh $(DRYDOCK_KUBE_BIN)

# The S3-compatible server the storage and replica tests run against
# (internal/s3test): versitygw, pinned in the separate module hack/s3server,
# built once into the cache (about 2.5 minutes of CPU, 40 MB).
VERSITYGW_VERSION := v1.8.0
s3server: $(TOOLS)/versitygw-$(VERSITYGW_VERSION)

$(TOOLS)/versitygw-$(VERSITYGW_VERSION):
	mkdir -p $(TOOLS)
	cd hack/s3server && $(GO) build -o $@.tmp github.com/versity/versitygw/cmd/versitygw
	mv $@.tmp $@

# axe-core, the accessibility checker the web UI's browser test injects
# into every page (internal/web): the pinned npm tarball, fetched once
# into the cache (npm checks the tarball against the registry's integrity hash).
AXE_VERSION := 4.10.3
axe: $(TOOLS)/axe-core-$(AXE_VERSION)/axe.min.js

$(TOOLS)/axe-core-$(AXE_VERSION)/axe.min.js:
	mkdir -p $(TOOLS)/axe-core-$(AXE_VERSION).tmp
	cd $(TOOLS)/axe-core-$(AXE_VERSION).tmp && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null && tar -xzf axe-core-$(AXE_VERSION).tgz package/axe.min.js package/LICENSE
	mv $(TOOLS)/axe-core-$(AXE_VERSION).tmp/package/axe.min.js $(TOOLS)/axe-core-$(AXE_VERSION).tmp/axe.min.js
	rm -rf $(TOOLS)/axe-core-$(AXE_VERSION) && mv $(TOOLS)/axe-core-$(AXE_VERSION).tmp $(TOOLS)/axe-core-$(AXE_VERSION)

# The stock signing clients the signature tests run (internal/attest/
# attesttest): cosign and oras, pinned in the separate module
# hack/signtools, built once into the cache. The versions are also in
# internal/attest/attesttest/tools.go.
COSIGN_VERSION := v2.6.5
ORAS_VERSION := v1.3.6
signtools: $(TOOLS)/cosign-$(COSIGN_VERSION) $(TOOLS)/oras-$(ORAS_VERSION)

$(TOOLS)/cosign-$(COSIGN_VERSION):
	mkdir -p $(TOOLS)
	cd hack/signtools && $(GO) build -trimpath -o $@.tmp github.com/sigstore/cosign/v2/cmd/cosign
	mv $@.tmp $@

$(TOOLS)/oras-$(ORAS_VERSION):
	mkdir -p $(TOOLS)
	cd hack/signtools && $(GO) build -trimpath -o $@.tmp oras.land/oras/cmd/oras
	mv $@.tmp $@

$(TOOLS)/staticcheck-$(STATICCHECK_VERSION):
	mkdir -p $(TOOLS)
	GOBIN=$(TOOLS)/sc.tmp $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(TOOLS)/sc.tmp/staticcheck $@ && rmdir $(TOOLS)/sc.tmp

$(TOOLS)/gremlins-$(GREMLINS_VERSION):
	mkdir -p $(TOOLS)
	GOBIN=$(TOOLS)/gremlins.tmp $(GO) install github.com/go-gremlins/gremlins/cmd/gremlins@$(GREMLINS_VERSION)
	mv $(TOOLS)/gremlins.tmp/gremlins $@ && rmdir $(TOOLS)/gremlins.tmp

# Mutation testing (go-gremlins) of the security- and correctness-critical
# packages: the gate, gatekeeper, store, auth, audit, the registry guard,
# the dpkg writing of patch/apt and the sandbox. Prints the share of
# mutants killed per package (test/mutation/SURVIVORS.md explains the
# survivors). CPU-heavy: one package at a time, niced; not part of CI.
# One package: make mutate MUTATE_PKGS=internal/gate
mutate: $(TOOLS)/gremlins-$(GREMLINS_VERSION)
	bash test/mutation/run.sh $(TOOLS)/gremlins-$(GREMLINS_VERSION) $(MUTATE_PKGS)

lint: $(TOOLS)/staticcheck-$(STATICCHECK_VERSION)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(TOOLS)/staticcheck-$(STATICCHECK_VERSION) ./...

# go test runs its packages' binaries in the order they are named, two at
# a time on two cores: the longest ones are named first (e2e about 6
# minutes, the replicas 3, then the patcher, the web UI and GC), so that
# they do not start last and run alone at the end; ./... adds the rest.
# The second run is the cgo-free build's refusal of PKCS#11 keys
# (internal/attest/pkcs11_nocgo_test.go), which a cgo build never compiles.
SLOW_PKGS := ./test/e2e ./test/replicas ./internal/patch ./internal/web ./internal/gc ./internal/patch/cacerts
unit:
	$(GO) test -count=1 -timeout 45m $(SLOW_PKGS) ./...
	CGO_ENABLED=0 $(GO) test -count=1 -run 'PKCS11' ./internal/attest/

# Check that the trivy-json golden report decodes into, and round-trips
# through, Trivy's own report types. hack/trivycompat is a separate module so
# that Trivy's dependencies stay out of drydock's go.mod (first run: about
# 300 MB of modules, under a minute).
trivycompat:
	@cd hack/trivycompat && $(GO) test -count=1 ./...

# Benchmarks print figures and assert nothing: the registry's throughput and
# memory (bench/registry.sh), the patcher's time per phase and memory
# (bench/patch.sh; alone: make bench-patch).
bench:
	./bench/registry.sh
	./bench/patch.sh
	$(MAKE) bench-gate
	$(MAKE) bench-kube
	$(MAKE) bench-limits

# push -> verdict and promotion times over real HTTP with the real scanner
# (needs ../shared/vulndata; skips without it)
bench-gate:
	go test -run '^$$' -bench GateArrival -benchtime 5x ./internal/server

bench-patch:
	./bench/patch.sh

# Admission latency of a pod of 8 containers at 200/s (at the webhook and
# through a real API server, warm and cold) and "who runs CVE-X" over
# 10,000 pods and 1,000 digests.
bench-kube: kube-bins
	go test -run '^$$' -bench KubeAdmission -benchtime 1x ./internal/server
	go test -run '^$$' -bench Affected -benchtime 3x ./internal/kube

# issue 12's hole 5: a <1 MB layer with a 50 MB dpkg status of 160,000 fake
# openssl packages, judged through the gate's read path and by the server;
# prints the peak RSS and heap while judging (needs ../shared/vulndata)
bench-limits:
	go test -run '^$$' -bench GateHugeStatus -benchtime 1x ./internal/scan ./internal/server

# one workflow run over 10 tags of 3 releases (cold and warm archive cache)
# beside 10 separate drydock patch runs: times, archive requests, peak RSS
bench-workflow:
	go test -run '^$$' -bench RunTenTags -benchtime 1x -timeout 90m ./internal/workflow

# issue 17: the dashboard, a page of 100 images and "which images contain
# CVE-X" (server time), and the findings index's queries on SQLite and
# PostgreSQL, with 10,000 images and 1,000,000 findings stored through the
# real store (-short: 1,000 images)
bench-ui:
	go test -run '^$$' -bench UIAtScale -benchtime 5x -timeout 60m ./internal/web
	go test -run '^$$' -bench FindingsIndex -benchtime 5x -timeout 60m ./internal/store

clean-cache:
	rm -rf $(DRYDOCK_CACHE)
