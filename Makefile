# fcgiproxy — developer entry points. `make run` and `make test` work on a fresh Debian machine.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

ROOT      := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
RUNDIR    := $(ROOT)/run
SWIFT     ?= swift
# libnghttp2-dev: the default build has the HTTP2 trait (`--disable-default-traits` builds without).
BUILD_PKGS := libnghttp2-dev
RUN_PKGS  := $(BUILD_PKGS) php-fpm curl
# dokuwiki: DokuWikiTests. It needs php8.2 (libapache2-mod-php8.2 | php8.2-fpm | ...): with
# php-fpm in the same apt-get call apt takes php8.2-fpm, so no Apache comes along.
TEST_PKGS := $(BUILD_PKGS) php-fpm curl nginx libfcgi-bin nghttp2-client python3-prometheus-client python3-h2 golang-go dokuwiki
# The build without default traits (no HTTP/2) keeps its own cache, so the two do not evict each other.
NOTRAITS  := --disable-default-traits --scratch-path $(ROOT)/.build-notraits

.PHONY: build run run-php test test-notraits deps-build deps-run deps-test php-start php-stop clean install verify-units fuzz fuzz-build sanitize

build: deps-build
	$(SWIFT) build

deps-build:
	$(ROOT)/scripts/ensure-packages.sh $(BUILD_PKGS)

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
run: deps-build
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

# `systemd-analyze verify` on the unit files, when the tool exists. verify insists that the
# ExecStart= binary exists, so the check runs on copies pointing at the built binary.
verify-units:
	if command -v systemd-analyze >/dev/null; then \
		$(SWIFT) build; \
		dir="$$(mktemp -d)"; trap 'rm -rf "$$dir"' EXIT; \
		sed "s|/usr/local/bin/fcgiproxy|$$($(SWIFT) build --show-bin-path)/fcgiproxy|g" \
			$(ROOT)/systemd/fcgiproxy.service > "$$dir/fcgiproxy.service"; \
		cp $(ROOT)/systemd/fcgiproxy.socket "$$dir/"; \
		out="$$(systemd-analyze verify "$$dir/fcgiproxy.socket" "$$dir/fcgiproxy.service" 2>&1)"; \
		if [ -n "$$out" ]; then echo "$$out"; exit 1; fi; \
		echo "systemd-analyze verify: unit files OK"; \
	else \
		echo "systemd-analyze not installed: unit files not verified"; \
	fi

# Unit and integration tests (the integration tests start their own PHP-FPM, fcgiproxy and,
# with FRONT=nginx, nginx instead of fcgiproxy).
test: deps-test verify-units
	$(SWIFT) build --build-tests
	# Unit tests first, then the end-to-end suite on its own: the integration tests time real
	# servers and should not compete with hundreds of parallel unit tests for two cores. Each
	# run is bounded, so a hang fails fast instead of eating CI's 90 minutes.
	timeout 600 $(SWIFT) test --skip-build --skip IntegrationTests
	FCGIPROXY_BIN="$${FCGIPROXY_BIN:-$$($(SWIFT) build --show-bin-path)/fcgiproxy}" timeout 900 $(SWIFT) test --skip-build --filter IntegrationTests
	$(MAKE) test-notraits

# The build without the default traits (HTTP2, TLS): it must compile, pass the unit tests, not
# link libnghttp2, and not contain BoringSSL (compiled in statically, so `nm`, not `ldd`). The
# integration suite runs on the default build only (it is the same code path for HTTP/1).
test-notraits:
	$(SWIFT) build $(NOTRAITS) --build-tests
	timeout 600 $(SWIFT) test $(NOTRAITS) --skip-build --skip IntegrationTests
	bin="$$($(SWIFT) build $(NOTRAITS) --show-bin-path)/fcgiproxy"; \
	"$$bin" --version | grep -q '(no http2, no tls)'; \
	if ldd "$$bin" | grep -q nghttp2; then echo "$$bin links libnghttp2 without the HTTP2 trait"; exit 1; fi; \
	if nm "$$bin" | grep CNIOBoringSSL_SSL_CTX_new >/dev/null; then echo "$$bin contains BoringSSL without the TLS trait"; exit 1; fi

# libFuzzer targets (Fuzz/, a package of its own; see docs/fuzzing.md). Not part of `make test`.
# Builds them with libFuzzer and AddressSanitizer (both ship with the Swift toolchain), then runs
# each for FUZZ_SECONDS on a copy of its seed corpus under Fuzz/.build/fuzz/NAME (what a run
# finds stays there for the next run; Fuzz/Corpus is never written). Fails when a target
# crashes; the input is saved as Fuzz/.build/fuzz/NAME/crash-*. FUZZ_TARGETS picks some:
#   make fuzz FUZZ_SECONDS=300 FUZZ_TARGETS="http1 cgi-head"
# swiftc applies only the last -sanitize= it is given, and SwiftPM's --sanitize=fuzzer passes
# one per sanitizer: the combined flag comes through -Xswiftc. --sanitize=fuzzer itself is
# still needed, so that SwiftPM lets libFuzzer's main() be the program's entry point. Swift's
# backtracer is off in the runs: ASan reports its crash handler's stack reads as an error.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= http1 fastcgi cgi-head config http1-diff h2
FUZZ_BUILD   := -c release --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address
# NAME:executable:dictionary
FUZZ_MAP     := http1:FuzzHTTP1Parser:http1 fastcgi:FuzzFastCGIRecords:fastcgi \
                cgi-head:FuzzCGIResponseHead:cgi-head config:FuzzConfigParser:config \
                http1-diff:FuzzHTTP1Differential:http1 h2:FuzzHTTP2Session:h2

# deps-build: the HTTP/2 target needs libnghttp2-dev.
fuzz-build: deps-build
	cd $(ROOT)/Fuzz && $(SWIFT) build $(FUZZ_BUILD)

fuzz: fuzz-build
	@bin="$$(cd $(ROOT)/Fuzz && $(SWIFT) build $(FUZZ_BUILD) --show-bin-path)"; \
	failed=""; \
	for name in $(FUZZ_TARGETS); do \
		entry=""; for item in $(FUZZ_MAP); do [ "$${item%%:*}" = "$$name" ] && entry="$$item"; done; \
		if [ -z "$$entry" ]; then echo "unknown fuzz target $$name"; exit 2; fi; \
		exe="$$(echo "$$entry" | cut -d: -f2)"; dict="$$(echo "$$entry" | cut -d: -f3)"; \
		work="$(ROOT)/Fuzz/.build/fuzz/$$name"; \
		mkdir -p "$$work/corpus"; \
		cp -n "$(ROOT)/Fuzz/Corpus/$$name"/* "$$work/corpus/"; \
		echo "== $$name ($$exe), $(FUZZ_SECONDS) s"; \
		rc=0; \
		SWIFT_BACKTRACE=enable=no "$$bin/$$exe" -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
			-dict="$(ROOT)/Fuzz/Dictionaries/$$dict.dict" -artifact_prefix="$$work/" \
			"$$work/corpus" > "$$work/log" 2>&1 || rc=$$?; \
		grep -E '^Done [0-9]+ runs' "$$work/log" || true; \
		grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$$work/log" || true; \
		if [ "$$rc" -ne 0 ]; then \
			grep -E -m 20 'ERROR|SUMMARY|Fatal error|Test unit written|panic' "$$work/log" || tail -n 30 "$$work/log"; \
			echo "$$name FAILED (exit $$rc); log: $$work/log"; \
			failed="$$failed $$name"; \
		fi; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz targets that failed:$$failed"; exit 1; fi; \
	echo "fuzz: no crashes"

# The unit tests under AddressSanitizer, then ThreadSanitizer, each in a build folder of its own
# (two more full builds: not part of `make test`, for which CI's time would not last). With
# SANITIZE_INTEGRATION=1 the integration suite also runs against the ASan build of the proxy.
# LeakSanitizer is off by default (ASAN_OPTIONS=detect_leaks=1 turns it on): at exit it reports
# the storage of unix-socket SocketAddresses, which Swift keeps as a multi-payload enum whose
# tag bits hide the pointer from LSan, and the SSL_CTXs of TLS contexts made in tests, which
# are not triaged yet; AddressSanitizer's own checks stay on.
ASAN_OPTIONS ?= detect_leaks=0
sanitize: deps-test
	$(SWIFT) build --build-tests --sanitize=address --scratch-path $(ROOT)/.build-asan
	ASAN_OPTIONS=$(ASAN_OPTIONS) timeout 1800 $(SWIFT) test --skip-build --sanitize=address --scratch-path $(ROOT)/.build-asan --skip IntegrationTests
	if [ "$${SANITIZE_INTEGRATION:-0}" = 1 ]; then \
		FCGIPROXY_BIN="$$($(SWIFT) build --sanitize=address --scratch-path $(ROOT)/.build-asan --show-bin-path)/fcgiproxy" \
		ASAN_OPTIONS=$(ASAN_OPTIONS) timeout 1800 $(SWIFT) test --skip-build --sanitize=address --scratch-path $(ROOT)/.build-asan --filter IntegrationTests; \
	fi
	$(SWIFT) build --build-tests --sanitize=thread --scratch-path $(ROOT)/.build-tsan
	TSAN_OPTIONS=halt_on_error=1 timeout 2400 $(SWIFT) test --skip-build --sanitize=thread --scratch-path $(ROOT)/.build-tsan --skip IntegrationTests

# Installs the release binary, the systemd units and the example configuration:
#   make install                      # /usr/local/bin, /usr/local/lib/systemd/system, /etc/fcgiproxy
#   make install DESTDIR=pkg PREFIX=/usr
# The units name $(PREFIX)/bin/fcgiproxy. An existing fcgiproxy.ini is never overwritten.
PREFIX     ?= /usr/local
DESTDIR    ?=
BINDIR     ?= $(PREFIX)/bin
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc

install: deps-build
	$(SWIFT) build -c release --product fcgiproxy
	install -d "$(DESTDIR)$(BINDIR)" "$(DESTDIR)$(UNITDIR)" "$(DESTDIR)$(SYSCONFDIR)/fcgiproxy"
	install -m 0755 "$$($(SWIFT) build -c release --show-bin-path)/fcgiproxy" "$(DESTDIR)$(BINDIR)/fcgiproxy"
	sed -e 's|/usr/local/bin/fcgiproxy|$(BINDIR)/fcgiproxy|g' -e 's|/etc/fcgiproxy/|$(SYSCONFDIR)/fcgiproxy/|g' \
		$(ROOT)/systemd/fcgiproxy.service > "$(DESTDIR)$(UNITDIR)/fcgiproxy.service"
	chmod 0644 "$(DESTDIR)$(UNITDIR)/fcgiproxy.service"
	install -m 0644 $(ROOT)/systemd/fcgiproxy.socket "$(DESTDIR)$(UNITDIR)/fcgiproxy.socket"
	if [ -e "$(DESTDIR)$(SYSCONFDIR)/fcgiproxy/fcgiproxy.ini" ]; then \
		echo "kept the existing $(DESTDIR)$(SYSCONFDIR)/fcgiproxy/fcgiproxy.ini"; \
	else \
		install -m 0644 $(ROOT)/config/fcgiproxy.ini "$(DESTDIR)$(SYSCONFDIR)/fcgiproxy/fcgiproxy.ini"; \
	fi
	@echo "installed; then: systemctl daemon-reload && systemctl enable --now fcgiproxy.socket (or fcgiproxy.service)"

clean:
	-$(ROOT)/scripts/php-fpm.sh stop $(RUNDIR)
	rm -rf $(RUNDIR) $(ROOT)/.build-notraits
	$(SWIFT) package clean
