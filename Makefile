# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit check-manifest bench bench-db bench-socket failover soak chaos stress-test fuzz lock clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

## make run: start the bot (Slack when credentials are set, otherwise the local sandbox)
run: $(STAMP)
	$(BIN)/sla-bot run

## make test: lint, type-check, the import contracts and the whole test suite
test: lint unit

lint: $(STAMP)
	$(BIN)/ruff check bot matrix_engine storage tests benchmarks
	$(BIN)/ruff format --check bot matrix_engine storage tests benchmarks
	$(BIN)/mypy bot matrix_engine storage tests benchmarks
	$(BIN)/lint-imports --no-cache

# The suite runs on TEST_WORKERS pytest-xdist workers: its tests mostly wait (on child processes,
# loopback HTTP and SQLite fsyncs), so on 2 cores 3 workers beat 2 and 4 (see README);
# `make unit TEST_WORKERS=0` runs it in one process. No test collected fails (pytest exits 5).
TEST_WORKERS ?= 3
unit: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

## make check-manifest: manifests/slack-app.yaml against Slack's manifest schema (a vendored copy)
## and the approved scopes; make test runs the same checks
check-manifest: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_docs.py -k "manifest or schema or scopes"

## make bench: every benchmark of the "fast where people wait" table, then the table (about 9 min)
bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all

## make bench-db: SQLite against PostgreSQL in the same run (lookup round trip, declare latency)
bench-db: $(STAMP)
	$(BIN)/python -m benchmarks.bench_backends

## make failover: SIGKILL the leading replica 20 times during a SEV-1; failover p50/p99/max
failover: $(STAMP)
	$(BIN)/python -m benchmarks.failover

## make bench-socket: Socket Mode clients side by side, then sla-bot serve in Socket Mode vs HTTP
bench-socket: $(STAMP)
	$(BIN)/python -m benchmarks.bench_socket_mode

## make soak: the 24-hour L5 soak in real (scaled) time, RSS and lateness figures
soak: $(STAMP)
	$(BIN)/python -m benchmarks.soak

## make chaos: the delivery chaos run (104 SIGKILLs under faults, poisoned incidents; about 12
## minutes), then R1 with 100 SIGKILLs at random moments, D1 with 300 and S12 (Statuspage) with 40
## (the suite runs 10, 30 and 5)
chaos: $(STAMP)
	$(BIN)/python -m benchmarks.chaos
	DURABILITY_KILLS=100 D1_KILLS=300 STATUSPAGE_KILLS=40 $(BIN)/python -m pytest -q -s -p no:cacheprovider \
		tests/bot/delivery/test_durability.py::test_r1_sigkill_at_random_moments_loses_and_repeats_nothing \
		tests/storage/test_storage.py::test_d1_kill_9_during_declarations_leaves_no_partial_incident \
		tests/bot/delivery/test_statuspage_durability.py::test_sigkills_at_random_moments_put_every_update_on_the_page_once_in_order

## make stress-test: `make test` 3 times in a row beside 2 CPU-bound processes
stress-test: $(STAMP)
	$(BIN)/python -m benchmarks.stress_test

## make fuzz: the signed-request fuzz test (tests/bot/inbound/test_fuzz_http.py) with 10,000 examples; make test runs 500
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-10000} $(BIN)/python -m pytest -q -s -p no:cacheprovider tests/bot/inbound/test_fuzz_http.py

lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | sed '1i # Pinned, tested set of runtime + dev dependencies. Regenerate with `make lock`.' > requirements.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
