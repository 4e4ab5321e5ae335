# ivrpowers. The two commands: `make run` and `make test`. Each installs what it needs first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
IVR    := $(VENV)/bin/ivrpowers
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test check unit unit-quick unit-slow acd-then-slow-unit integration integration-acd integration-calls e2e unit-then-e2e web-assets deps venv asterisk bench bench-calls bench-video clean

run: deps venv asterisk web-assets
	$(IVR) run --start-asterisk --demo

# The unit tests (then the browser tests) and two halves of the integration tests run side by side
# (each integration half with its own Asterisk, controllers and PostgreSQL; the browser tests in a
# network namespace of their own): the integration tests mostly wait on Asterisk and SIPp, the unit
# tests mostly compute. Each one's output comes whole when it ends.
test: check deps venv asterisk web-assets
	$(MAKE) --no-print-directory -j3 -Otarget unit-then-e2e acd-then-slow-unit integration-calls

# The browser tests after the unit tests, not beside them: chromium encoding and decoding video on
# top of the unit tests starved the integration halves' timers on a 2-core machine. A unit failure
# still lets the browser tests run (and fails the target).
unit-then-e2e: venv web-assets
	@$(MAKE) --no-print-directory unit-quick; unit=$$?; $(MAKE) --no-print-directory e2e && exit $$unit

# The slowest unit tests (property-based and fuzzing: a minute and a half of computing) run after
# the ACD half of the integration tests, which ends minutes before the unit and browser tests do:
# `make test` ends that much sooner. `make unit` runs them all.
UNIT_SLOW := tests/unit/acd/test_properties.py tests/unit/test_api_fuzz.py tests/unit/acd/test_free.py

unit-quick: venv web-assets
	$(PY) -m pytest -ra -p no:cacheprovider tests/unit $(addprefix --ignore=,$(UNIT_SLOW))

unit-slow: venv web-assets
	$(PY) -m pytest -ra -p no:cacheprovider $(UNIT_SLOW)

acd-then-slow-unit: deps venv asterisk web-assets
	@$(MAKE) --no-print-directory integration-acd; acd=$$?; $(MAKE) --no-print-directory unit-slow && exit $$acd

# Lint and strict type check: cheap, so they run before the tests and fail fast.
check: venv
	$(VENV)/bin/ruff check ivrpowers tests
	$(VENV)/bin/mypy

unit: venv web-assets
	$(PY) -m pytest -ra -p no:cacheprovider tests/unit

integration: deps venv asterisk web-assets
	$(PY) -m pytest -ra tests/integration

INTEGRATION_ACD := $(wildcard tests/integration/test_queue*.py) tests/integration/test_chats.py \
	tests/integration/test_presence.py tests/integration/test_endpoints.py tests/integration/test_phones.py \
	tests/integration/test_scale_out.py

integration-acd: deps venv asterisk web-assets
	IVRPOWERS_TEST_RTP_BASE=27000 $(PY) -m pytest -ra -p no:cacheprovider --durations=8 $(INTEGRATION_ACD)

integration-calls: deps venv asterisk web-assets
	$(PY) -m pytest -ra -p no:cacheprovider --durations=8 tests/integration $(addprefix --ignore=,$(INTEGRATION_ACD))

# Browser (WebRTC) tests: Debian's chromium driven by Playwright, inside a private network namespace
# (needs root); see tests/e2e/conftest.py.
e2e: deps venv asterisk web-assets
	$(PY) -m pytest -ra -p no:cacheprovider --durations=8 tests/e2e

deps:
	@scripts/install-debian-deps

# The JsSIP bundle the web pages load, built from web/package-lock.json with npm (the script skips the
# work when the bundle is newer than the lock file).
WEB_BUNDLE := ivrpowers/web/static/vendor/jssip.js

web-assets: $(WEB_BUNDLE)

$(WEB_BUNDLE): web/package-lock.json
	@scripts/build-web-assets

venv: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "ivrpowers needs Python >= 3.11 ($(PYTHON) is older)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

# An `asterisk` on PATH is used as is; otherwise the Debian sid rootfs is built once into
# ~/.cache/ivrpowers (shared by every clone on the machine).
asterisk: venv
	@$(IVR) asterisk build

# `make bench`: the pure core (flows, the ACD router) and the CDR path, then the call-load bench (bench/: SIPp and tcpdump on
# loopback, as root; about 40 minutes by default, e.g. `make bench-calls BENCH_ARGS="--loads 1,50 --reps 1"`).
bench: deps venv asterisk
	$(PY) -m ivrpowers.bench
	$(PY) -m bench.flows bench-results/bench.json
	$(PY) -m bench.acd bench-results/bench.json
	$(PY) -m bench.acd_calls bench-results/bench.json
	$(PY) -m bench.calls $(BENCH_ARGS)
	$(MAKE) --no-print-directory bench-video

bench-calls: deps venv asterisk
	$(PY) -m bench.calls $(BENCH_ARGS)

# The video IVR: answer to the first decoded video frame (chromium on /call, VP8 and H.264) and CPU per
# concurrent video IVR call against a voice one (SIPp), in a network namespace of its own (as root); about
# 20 minutes, e.g. `make bench-video BENCH_VIDEO_ARGS="--calls 3 --loads 20 --reps 1"` (bench-results/video.json).
bench-video: deps venv asterisk web-assets
	$(PY) -m bench.video $(BENCH_VIDEO_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
