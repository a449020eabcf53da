# Skiff's build. `make run` starts a cluster; `make test` runs the tests,
# `make test-unit` the quick ones. All install what they need first
# (hack/deps.sh).

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
LDFLAGS  := -X github.com/skiffdev/skiff/internal/version.GitVersion=$(VERSION)
# make run keeps its state here unless RUN_DIR is given.
RUN_DIR  ?= $(if $(filter 0,$(shell id -u)),/var/lib/skiff,$(CURDIR)/.skiff)
# Which packages the tests run: all of them, or one component's
# (make test PKG=./kubelet/...).
PKG      ?= ./...
# Benchmarks: which to run, and for how long each.
BENCH    ?= .
BENCHTIME ?= 1x

.PHONY: all deps build run test test-unit bench proto lint clean

all: build

deps:
	@hack/deps.sh

build: deps
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/skiff ./cmd/skiff
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/skiffctl ./cmd/skiffctl

run: build
	@echo "Starting Skiff with its state in $(RUN_DIR). In another terminal, try:"
	@echo "  bin/skiffctl get nodes -o wide"
	@echo "  bin/skiffctl apply -f examples/web.yaml"
	@echo "  bin/skiffctl rollout status deployment/web"
	@echo "  bin/skiffctl get deploy,svc,pods -o wide"
	@echo "  bin/skiffctl logs deploy/web"
	@echo "  bin/skiffctl describe deployment web"
	@echo "Not root? The control plane runs without a kubelet; try: bin/skiff simnodes --count 3"
	@echo "Other machines join with the token in $(RUN_DIR)/token: sudo bin/skiff agent --server https://THIS-HOST:6443 --token TOKEN"
	@echo "(the API listens on loopback unless you add --listen 0.0.0.0:6443; it serves only TLS, and skiffctl"
	@echo " finds the admin kubeconfig skiff server writes: /etc/skiff/admin.kubeconfig as root, else ~/.skiff/config)"
	@echo "Stop it with Ctrl-C; its state stays in $(RUN_DIR)."
	bin/skiff server --data-dir $(RUN_DIR)

# Unit and integration tests, including the fuzz targets' seed corpora:
# the whole suite, which CI runs.
test: deps
	$(GO) test -race -count=1 -timeout 20m $(PKG)

# The tests in -short mode: everything that needs neither root nor a real
# container (those skip, saying why), against real etcd and API servers
# all the same. A few minutes at most, without the race detector.
test-unit: deps
	$(GO) test -short -count=1 -timeout 10m $(PKG)

# Benchmarks report custom metrics (creates/s, p99-ms, rss-MB, ...).
bench: deps
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -timeout 60m ./...

# Regenerates proto/ with pinned generators. The generated Go is committed,
# so building never needs this.
proto:
	proto/generate.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin .skiff
