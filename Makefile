# fcgiproxy — developer entry points. `make run` and `make test` work on a fresh Debian machine.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

ROOT      := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
RUNDIR    := $(ROOT)/run
SWIFT     ?= swift
RUN_PKGS  := php-fpm curl
TEST_PKGS := php-fpm curl nginx libfcgi-bin

.PHONY: build run run-php test deps-run deps-test php-start php-stop clean

build:
	$(SWIFT) build

deps-run:
	$(ROOT)/scripts/ensure-packages.sh $(RUN_PKGS)

deps-test:
	$(ROOT)/scripts/ensure-packages.sh $(TEST_PKGS)

$(RUNDIR)/php-example.ini: $(ROOT)/config/php-example.ini.in
	mkdir -p $(RUNDIR)
	sed 's|@ROOT@|$(ROOT)|g' $< > $@

# The embedded default: fcgiproxy spawns the Swift demo worker (no PHP needed). Release build:
# several workers accept on one inherited socket, and a debug build of SwiftNIO asserts when
# another process won the race for a connection (EAGAIN on accept); release builds carry on.
run:
	$(SWIFT) build -c release
	mkdir -p $(RUNDIR)
	bin="$$($(SWIFT) build -c release --show-bin-path)"; \
	sed -e 's|@ROOT@|$(ROOT)|g' -e "s|@BIN@|$$bin|g" $(ROOT)/config/demo.ini.in > $(RUNDIR)/demo.ini; \
	echo "Open http://127.0.0.1:8080/  (also /echo, /stream?n=5, /slow?ms=500, /bytes?n=1000000)"; \
	exec "$${FCGIPROXY_BIN:-$$bin/fcgiproxy}" --config $(RUNDIR)/demo.ini --run-dir $(RUNDIR)

php-start:
	$(ROOT)/scripts/php-fpm.sh start $(RUNDIR)

php-stop:
	$(ROOT)/scripts/php-fpm.sh stop $(RUNDIR)

# Foreground: fcgiproxy on 127.0.0.1:8080 in front of a project-local PHP-FPM serving
# examples/php. Ctrl-C stops both.
run-php: deps-run build $(RUNDIR)/php-example.ini
	$(ROOT)/scripts/php-fpm.sh start $(RUNDIR)
	trap '$(ROOT)/scripts/php-fpm.sh stop $(RUNDIR)' EXIT; \
	trap 'exit 130' INT TERM; \
	bin="$${FCGIPROXY_BIN:-$$($(SWIFT) build --show-bin-path)/fcgiproxy}"; \
	echo "Open http://127.0.0.1:8080/"; \
	"$$bin" --config $(RUNDIR)/php-example.ini

# Unit and integration tests (the integration tests start their own PHP-FPM, fcgiproxy and,
# with FRONT=nginx, nginx instead of fcgiproxy).
test: deps-test
	$(SWIFT) build --build-tests
	# Unit tests first, then the end-to-end suite on its own: the integration tests time real
	# servers and should not compete with hundreds of parallel unit tests for two cores. Each
	# run is bounded, so a hang fails fast instead of eating CI's 90 minutes.
	timeout 600 $(SWIFT) test --skip-build --skip IntegrationTests
	FCGIPROXY_BIN="$${FCGIPROXY_BIN:-$$($(SWIFT) build --show-bin-path)/fcgiproxy}" timeout 900 $(SWIFT) test --skip-build --filter IntegrationTests

clean:
	-$(ROOT)/scripts/php-fpm.sh stop $(RUNDIR)
	rm -rf $(RUNDIR)
	$(SWIFT) package clean
