# Entry points a newcomer needs; each installs what it needs first (scripts/bootstrap.sh).
.PHONY: up test test-fast lint bench

STATE_DIR ?=

up:
	@bash scripts/bootstrap.sh
	.venv/bin/neutrino up $(if $(STATE_DIR),--state-dir $(STATE_DIR),)

# The whole suite, as CI runs it (SQLite, PostgreSQL and MariaDB; kernel tests need root).
test:
	@bash scripts/bootstrap.sh --test
	.venv/bin/ruff check src tests bench
	.venv/bin/lint-imports
	.venv/bin/mypy
	.venv/bin/pytest -q -rfEs -n 2 --dist loadgroup tests

# The everyday subset: unit tests and SQLite API tests, no slow tests (kernel and RabbitMQ tests may
# skip here, with their reasons shown; in `make test` such a skip fails the run).
test-fast:
	@bash scripts/bootstrap.sh --test
	NEUTRINO_TEST_ALLOW_SKIPS=$${NEUTRINO_TEST_ALLOW_SKIPS-kernel,rabbitmq} \
	.venv/bin/pytest -q -rfEs -n 2 --dist loadgroup -m "not slow and not postgres and not mysql" tests

lint:
	@bash scripts/bootstrap.sh --test
	.venv/bin/ruff check src tests bench
	.venv/bin/lint-imports
	.venv/bin/mypy

bench:
	@bash scripts/bootstrap.sh --test
	.venv/bin/python bench/api_bench.py --help
