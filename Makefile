# diffuse — the two commands of the README:
#   make demo   installs missing Debian packages, builds, trains small models, writes pictures
#   make test   builds and runs every test
.PHONY: all setup build test demo demo-colour bench clean install cli-reference fuzz test-asan

BUILD ?= build
PREFIX ?= $(CURDIR)/install
# Every Debian package the project needs to build, test and run the demo.
PACKAGES := cmake ninja-build g++ pkg-config ccache libtorch-dev libopenblas0-pthread \
            libcli11-dev nlohmann-json3-dev libplplot-dev plplot-driver-cairo \
            libgtest-dev googletest fonts-dejavu-core \
            libpng-dev libgif-dev zlib1g-dev libjpeg-dev dataset-fashion-mnist libgloo-dev \
            libfreetype-dev fonts-noto-color-emoji unicode-data libcpp-httplib-dev chromium
# Only for `make bench`: the PyTorch reference rows of the throughput benchmark.
BENCH_PACKAGES := python3-torch
export CCACHE_SLOPPINESS := include_file_mtime,include_file_ctime,time_macros
export CCACHE_DIR ?= $(HOME)/.cache/ccache

all: build

setup:
	@missing=$$(for p in $(PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:" $$missing; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	  else \
	    echo "missing Debian packages. Run as root:"; \
	    echo "  sudo apt-get install -y" $$missing; \
	    exit 1; \
	  fi; \
	fi
	@# Node.js + npm for the browser tests (tests/browser/): the machine's own if it has one, else Debian's.
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null || exit 1; \
	  else echo "missing node/npm. Run as root: sudo apt-get install -y nodejs npm"; exit 1; fi; \
	fi
	@# playwright-core from the committed lockfile; it drives Debian's chromium (never downloads a browser).
	@if [ ! -f tests/browser/node_modules/.package-lock.json ] || \
	    ! cmp -s tests/browser/package-lock.json tests/browser/node_modules/.lock-installed; then \
	  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error && \
	   cp package-lock.json node_modules/.lock-installed) || exit 1; \
	fi

$(BUILD)/build.ninja: | setup
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_INSTALL_PREFIX=$(PREFIX)

build: setup $(BUILD)/build.ninja
	cmake --build $(BUILD)

# One test per core (tests/CMakeLists.txt: the two long script tests start first and never
# together; crash_consistency, which calibrates to the machine's speed, runs alone).
CTEST_JOBS ?= $(shell nproc 2>/dev/null || echo 1)
test: build
	cd $(BUILD) && ctest --output-on-failure --timeout 1200 -j $(CTEST_JOBS)

# docs/cli-reference.md from the binary's --help (the ctest test cli_reference fails when it is stale).
cli-reference: build
	bash tools/gen_cli_reference.sh $(BUILD)/diffuse docs/cli-reference.md

# The vector models and Fashion-MNIST (~9.5 min), then the colour demo below (8.4 min).
demo: build
	bash tools/demo.sh $(BUILD)/diffuse out/demo
	bash tools/demo_colour.sh $(BUILD)/diffuse out/demo/colour

# Colour alone: a small emoji model (8 min 21 s on 2 cores, 2026-11-30), its samples, a colorization and two
# upscalings of held-out test emoji, under out/demo-colour/ (docs/colour.md).
demo-colour: build
	bash tools/demo_colour.sh $(BUILD)/diffuse out/demo-colour

# Speed, measured (never in tests): training throughput against PyTorch eager and this
# machine's convolution peak. See bench/README.md and docs/images.md.
bench: build
	@$(MAKE) --no-print-directory setup PACKAGES="$(BENCH_PACKAGES)"
	bash bench/train_throughput.sh $(BUILD)/bench/bench_train_throughput

# Fuzzing (docs/reliability.md): clang + libFuzzer, the library under ASan + UBSan, every target of
# fuzz/targets/ for FUZZ_SECONDS from the seeds in fuzz/corpus/. `make test` replays the corpora.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_PACKAGES := clang libclang-rt-14-dev
fuzz: setup
	@$(MAKE) --no-print-directory setup PACKAGES="$(FUZZ_PACKAGES)"
	cmake -S . -B $(FUZZ_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=clang++ \
	  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DDIFFUSE_FUZZ=ON -DDIFFUSE_BUILD_TESTS=OFF \
	  -DDIFFUSE_BUILD_APPS=OFF -DDIFFUSE_BUILD_BENCH=OFF
	cmake --build $(FUZZ_BUILD)
	bash tools/run_fuzz.sh $(FUZZ_BUILD) fuzz/corpus $(FUZZ_SECONDS)

# The library and the unit tests (not the CLI scripts) under AddressSanitizer + UBSan (gcc).
ASAN_BUILD ?= build-asan
test-asan: setup
	cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
	  -DDIFFUSE_SANITIZE=ON -DDIFFUSE_BUILD_APPS=OFF -DDIFFUSE_BUILD_BENCH=OFF
	cmake --build $(ASAN_BUILD)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=0:detect_container_overflow=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure --timeout 2400

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) out
