# Pando. `make demo` runs a sample task end to end; `make test` runs the tests.
GO      ?= go
# The podman bindings (containers/) need these tags; they are harmless elsewhere.
TAGS    ?= remote exclude_graphdriver_btrfs exclude_graphdriver_devicemapper containers_image_openpgp
GOFLAGS_TAGS = -tags "$(TAGS)"
BIN     := bin/pando
PKGS    := ./...
# Podman settings these hosts need (ulimits, runc); see test/containers.conf.
export CONTAINERS_CONF ?= $(CURDIR)/test/containers.conf

.PHONY: build test deps demo bench fuzz vet soak clean

build: $(BIN)

$(BIN): FORCE
	$(GO) build $(GOFLAGS_TAGS) -o $(BIN) ./cmd/pando

FORCE:

vet:
	$(GO) vet $(GOFLAGS_TAGS) $(PKGS)

# Unit tests beside the code, then the end-to-end tests in test/ against the
# real binary (real processes over loopback QUIC).
test: deps build vet
	$(GO) test $(GOFLAGS_TAGS) -race -timeout 15m $$($(GO) list ./... | grep -v /test$$)
	PANDO_BIN=$(CURDIR)/$(BIN) $(GO) test $(GOFLAGS_TAGS) -timeout 15m -count=1 ./test/

# Podman, runc and busybox-static for the container tests (apt-get, as root).
deps:
	sh test/deps.sh

# Long variants of the fault tests (e.g. 20,000 jobs through 5 dispatcher crashes).
soak: build
	PANDO_SOAK=1 PANDO_BIN=$(CURDIR)/$(BIN) $(GO) test $(GOFLAGS_TAGS) -timeout 60m -count=1 -run 'CrashLoop' -v ./test/

demo: build
	$(BIN) demo

# The dispatch benchmark at 1,000 simulated agents (see BENCHMARKS.md).
BENCH_JOBS ?= 100000
bench: build
	$(BIN) bench dispatch --agents 1000 --jobs $(BENCH_JOBS)
	$(BIN) bench e2e --jobs 2000
	$(GO) test $(GOFLAGS_TAGS) -run '^$$' -bench . -benchtime 3x ./dispatcher/store/sqlite/ ./dispatcher/broker/
	$(GO) test -run '^$$' -bench Parse ./dispatcher/task/

# Every decoder has a fuzz target; each runs for FUZZTIME.
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime $(FUZZTIME) ./dispatcher/wire/
	$(GO) test -run '^$$' -fuzz '^FuzzUnmarshal$$' -fuzztime $(FUZZTIME) ./dispatcher/wire/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./dispatcher/task/
	$(GO) test -run '^$$' -fuzz '^FuzzSubmitBody$$' -fuzztime $(FUZZTIME) ./dispatcher/api/
	$(GO) test -run '^$$' -fuzz '^FuzzTokenRequest$$' -fuzztime $(FUZZTIME) ./dispatcher/api/

clean:
	rm -rf bin
