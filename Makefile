# Keel's front door. `make run` and `make test` work on a fresh Debian 12 machine:
# they install what is missing, build, and then start Keel or run every test.
# Everything is incremental: a second run re-downloads and rebuilds nothing.

BUILD_DIR      ?= build
DEBUG_DIR      ?= build-debug
ASAN_DIR       ?= build-asan
JOBS           ?= $(shell nproc)
CMAKE_FLAGS    ?=
CTEST_FLAGS    ?= --output-on-failure --timeout 600
KEEL_RUN_FLAGS ?=

.PHONY: all release debug deps model test test-asan run bench clean help

all: release

help:
	@echo "make          build build/keel (Release, native CPU; CMAKE_FLAGS=-DKEEL_PORTABLE=ON for a portable build)"
	@echo "make run      install what is missing, build, fetch the default model, start 'keel up'"
	@echo "make test     install what is missing, build, run every test (SQLite and PostgreSQL)"
	@echo "make test-asan  the test suite under AddressSanitizer + UndefinedBehaviorSanitizer"
	@echo "make debug    Debug build in $(DEBUG_DIR)/"
	@echo "make bench    build and run the benchmarks in bench/"

deps:
	@scripts/install-deps

model: deps
	@scripts/fetch-default-model >/dev/null

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

release: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

debug: deps
	cmake -S . -B $(DEBUG_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS)
	cmake --build $(DEBUG_DIR) -j $(JOBS)

run: release model
	$(BUILD_DIR)/keel up $(KEEL_RUN_FLAGS)

test: release model
	scripts/with-postgres ctest --test-dir $(BUILD_DIR) -j $(JOBS) $(CTEST_FLAGS)

test-asan: deps model
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEEL_SANITIZE=ON -DKEEL_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(ASAN_DIR) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  scripts/with-postgres ctest --test-dir $(ASAN_DIR) -j $(JOBS) $(CTEST_FLAGS)

bench: release model
	bench/run-all $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) $(DEBUG_DIR) $(ASAN_DIR)
