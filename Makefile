# SPDX-License-Identifier: MIT
# A thin wrapper around CMake (as neovim's). The README's two commands:
#   make run    install what is missing, build, start the server with the demo
#   make test   install what is missing, build, run every test (CTest)
# Options: BUILD=dir  TT_WERROR=1  TT_SANITIZE=1 (ASan+UBSan)  PORT=8000
#          HOST=127.0.0.1 (use HOST=0.0.0.0 for phones on the venue's Wi-Fi)

BUILD ?= build
PORT ?= 8000
HOST ?= 127.0.0.1
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo

CMAKE_FLAGS := -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)
ifeq ($(TT_WERROR),1)
CMAKE_FLAGS += -DTT_WERROR=ON
endif
ifeq ($(TT_SANITIZE),1)
CMAKE_FLAGS += -DTT_ASAN=ON -DTT_UBSAN=ON
endif

# Debian packages the build and the tests need.
APT_BUILD := build-essential cmake pkg-config libwebsockets-dev libmsgpack-dev \
	libsqlite3-dev libjansson-dev libcmocka-dev liblo-dev libqrencode-dev libssl-dev \
	libev-dev libwebsockets-evlib-ev libnats-dev
APT_TEST := chromium iproute2 procps openssl sqlite3 libnss3-tools zbar-tools nats-server haproxy
# Real OSC programs for the tutti-osc tests, without their recommends (the
# SuperCollider IDE and a JACK setup are not needed headless): liblo's
# oscdump/oscsend, Pure Data, SuperCollider's sclang. And Prometheus, for
# its promtool (`promtool check metrics` reads /metrics), without the node
# exporter it recommends; its service is not started.
APT_TEST_MIN := liblo-tools puredata-core supercollider-language prometheus

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build run test deps deps-test npm bench clean

all: build

# Install only what is missing: dpkg -s answers without the network.
deps:
	@missing=""; for p in $(APT_BUILD); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi
	@$(MAKE) --no-print-directory npm

deps-test: deps
	@missing=""; for p in $(APT_TEST); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; fi
	@missing=""; for p in $(APT_TEST_MIN); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; fi

# npm packages: the client's (served to browsers) and the tests'.
npm: web/node_modules/.installed tests/node_modules/.installed
web/node_modules/.installed: web/package.json $(wildcard web/package-lock.json)
	cd web && (npm ci --no-audit --no-fund || npm install --no-audit --no-fund)
	touch $@
tests/node_modules/.installed: tests/package.json $(wildcard tests/package-lock.json)
	cd tests && (npm ci --no-audit --no-fund || npm install --no-audit --no-fund)
	touch $@

build: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS)

run: build
	./$(BUILD)/tutti-server --host $(HOST) --port $(PORT) --schemas schemas --web web

test: deps-test build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

bench: build
	./$(BUILD)/tutti-bench --server ./$(BUILD)/tutti-server all

clean:
	rm -rf $(BUILD)
