# medvault: two commands on a fresh Debian machine: `make run` and `make test`.
BUILD_DIR ?= build
ASAN_DIR ?= build-asan
DATA ?= ./medvault-data
LISTEN ?= 127.0.0.1:8080
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
FUZZ_SECONDS ?= 300

.PHONY: deps configure build run test unit-test integration-test asan-test fuzz e2e bench format format-check clean

deps:
	@./scripts/install-deps.sh

$(BUILD_DIR)/build.ninja:
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	@MEDVAULT_BIN=./$(BUILD_DIR)/medvault ./scripts/run-demo.sh "$(DATA)" "$(LISTEN)"

# The unit and integration tests, every benchmark once briefly (scripts/bench-smoke.sh:
# a broken benchmark fails here, not in make bench), a short libFuzzer run of the
# importers (scripts/fuzz.sh smoke, in $(ASAN_DIR)) and the portal's end-to-end tests in
# headless Chromium (scripts/e2e.sh); any of them failing fails the target.
test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600
	@./scripts/bench-smoke.sh $(BUILD_DIR)
	@ASAN_DIR=$(ASAN_DIR) JOBS=$(JOBS) ./scripts/fuzz.sh smoke
	@./scripts/e2e.sh $(BUILD_DIR)

# The portal end to end in headless Chromium (also part of `make test`).
e2e: build
	@./scripts/e2e.sh $(BUILD_DIR)

# Configured by scripts/fuzz.sh (clang-14, Debug, ASan+UBSan, libFuzzer binaries):
# the fuzz runs and these unit tests share one build dir.
asan-test: deps
	@ASAN_DIR=$(ASAN_DIR) ./scripts/fuzz.sh configure
	@cmake --build $(ASAN_DIR) -j $(JOBS)
	@cd $(ASAN_DIR) && ctest --output-on-failure -j $(JOBS) -L unit --timeout 600

# Every libFuzzer target for FUZZ_SECONDS each; corpus kept in $(ASAN_DIR)/fuzz-corpus.
fuzz: deps
	@ASAN_DIR=$(ASAN_DIR) JOBS=$(JOBS) ./scripts/fuzz.sh long $(FUZZ_SECONDS)

bench: build
	@./scripts/run-bench.sh $(BUILD_DIR)

format:
	@clang-format-14 -i $$(git ls-files 'src/*.cc' 'src/*.h' 'tests/*.cc' 'tests/*.h' 'bench/*.cc' 'fuzz/*.cc')

format-check:
	@clang-format-14 --dry-run --Werror $$(git ls-files 'src/*.cc' 'src/*.h' 'tests/*.cc' 'tests/*.h' 'bench/*.cc' 'fuzz/*.cc')

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR)
