# drydock — build, run and test.
#
#   make run     start `drydock serve` with the embedded defaults
#   make test    install what the tests need (Debian packages), build the
#                test images from the machine's Debian mirror, run every test
#
# Build products that are slow to make (test images, the conformance suite,
# staticcheck) are cached under $(DRYDOCK_CACHE) and rebuilt only when missing.

SHELL := /bin/bash
GO ?= go
export DRYDOCK_CACHE ?= $(HOME)/.cache/drydock
TOOLS := $(DRYDOCK_CACHE)/tools
STATICCHECK_VERSION := v0.8.2
# Debian packages the tests use: debootstrap and mmdebstrap build the test
# images, skopeo/podman/runc are the standard clients the tests compare with,
# rpm/rpmbuild make real rpm databases for the inventory tests,
# distro-info-data tells the patcher which releases have reached end-of-life.
TEST_DEBS := debootstrap mmdebstrap skopeo podman runc rpm ca-certificates xz-utils zstd distro-info-data

.PHONY: all build run test deps testimages kube-bins lint unit trivycompat bench bench-patch bench-gate bench-kube clean-cache

all: build

build:
	$(GO) build -o bin/drydock ./cmd/drydock

run:
	$(GO) run ./cmd/drydock serve

test: deps lint testimages kube-bins unit trivycompat

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

$(TOOLS)/staticcheck-$(STATICCHECK_VERSION):
	mkdir -p $(TOOLS)
	GOBIN=$(TOOLS)/sc.tmp $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(TOOLS)/sc.tmp/staticcheck $@ && rmdir $(TOOLS)/sc.tmp

lint: $(TOOLS)/staticcheck-$(STATICCHECK_VERSION)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(TOOLS)/staticcheck-$(STATICCHECK_VERSION) ./...

unit:
	$(GO) test -count=1 -timeout 45m ./...

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

clean-cache:
	rm -rf $(DRYDOCK_CACHE)
