# Keel's front door. `make run` and `make test` work on a fresh Debian 12 machine:
# they install what is missing, build, and then start Keel or run every test.
# Everything is incremental: a second run re-downloads and rebuilds nothing.

BUILD_DIR      ?= build
DEBUG_DIR      ?= build-debug
ASAN_DIR       ?= build-asan
FUZZ_DIR       ?= build-fuzz
FUZZ_SECONDS   ?= 60
JOBS           ?= $(shell nproc)
CMAKE_FLAGS    ?=
CTEST_FLAGS    ?= --output-on-failure --timeout 600
KEEL_RUN_FLAGS ?=

.PHONY: all release debug deps model test-models python-env test test-asan fuzz run bench clean help

all: release

help:
	@echo "make          build build/keel (Release, native CPU; CMAKE_FLAGS=-DKEEL_PORTABLE=ON for a portable build)"
	@echo "make run      install what is missing, build, fetch the default model, start 'keel up'"
	@echo "make test     install what is missing, build, fetch the test models, run every test (SQLite and PostgreSQL)"
	@echo "make test-asan  the test suite under AddressSanitizer + UndefinedBehaviorSanitizer"
	@echo "make debug    Debug build in $(DEBUG_DIR)/"
	@echo "make fuzz     build the libFuzzer targets with clang-14 in $(FUZZ_DIR)/ and fuzz the GGUF reader for FUZZ_SECONDS (60)"
	@echo "make bench    build and run the benchmarks in bench/"

deps:
	@scripts/install-deps

model: deps
	@scripts/fetch-default-model >/dev/null

# Every model the tests use: the default model and Gemma 3 270M (scripts/fetch-models).
test-models: deps
	@scripts/fetch-models >/dev/null

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)

release: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

debug: deps
	cmake -S . -B $(DEBUG_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Debug $(CMAKE_FLAGS)
	cmake --build $(DEBUG_DIR) -j $(JOBS)

run: release model
	$(BUILD_DIR)/keel up $(KEEL_RUN_FLAGS)

python-env:
	@scripts/python-test-env >/dev/null

test: release test-models python-env
	scripts/with-postgres ctest --test-dir $(BUILD_DIR) -j $(JOBS) $(CTEST_FLAGS)

# The sanitizer run keeps -O2 (the numbers the model tests check depend on the same
# floating-point contractions as the release build) with line tables only (-g1): less
# compile time than -g, and stack traces still name file and line. It leaves out what only
# measures numbers or load, not memory safety, and is covered by `make test`: the
# llama.cpp agreement fixtures (minutes of forward passes), the 64-client load test, and
# the PostgreSQL variants of the end-to-end CLI suites (the same code above the store,
# whose PostgreSQL paths the store, tracking and registry suites run under the sanitizers).
ASAN_CTEST_EXCLUDE ?= ^Fixtures/LlamaCppAgreement\.|^OpenaiClientCompat\.load$$|Cli[A-Za-z]*Test\..*/postgres
test-asan: deps test-models python-env
	cmake -S . -B $(ASAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
	  -DKEEL_SANITIZE=ON -DKEEL_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(ASAN_DIR) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  scripts/with-postgres ctest --test-dir $(ASAN_DIR) -j $(JOBS) $(CTEST_FLAGS) $(if $(ASAN_CTEST_EXCLUDE),-E '$(ASAN_CTEST_EXCLUDE)')

# libFuzzer needs clang; only the fuzz targets (and the code they test) get the
# fuzzer and sanitizer flags. New inputs go to $(FUZZ_DIR)/corpus/; any crash fails.
fuzz: deps
	cmake -S . -B $(FUZZ_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-14 \
	  -DKEEL_BUILD_FUZZ=ON -DKEEL_BUILD_TESTS=OFF -DKEEL_BUILD_BENCH=OFF $(CMAKE_FLAGS)
	cmake --build $(FUZZ_DIR) -j $(JOBS) --target gguf_reader_fuzz
	mkdir -p $(FUZZ_DIR)/corpus/gguf $(FUZZ_DIR)/artifacts
	$(FUZZ_DIR)/fuzz/gguf_reader_fuzz -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
	  -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/artifacts/ $(FUZZ_DIR)/corpus/gguf fuzz/corpus/gguf

bench: release model python-env
	bench/run-all $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) $(DEBUG_DIR) $(ASAN_DIR) $(FUZZ_DIR)
