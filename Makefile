# One command to run the server, one to run every test. See README.md.
.PHONY: run test lint migrate lock upgrade

run:  ## set up, load the Toronto demo and serve on the embedded default
	bash scripts/run.sh

test:  ## set up, provision PostgreSQL + PostGIS, lint, run all tests on both backends
	bash scripts/test.sh

lint:  ## ruff, mypy --strict and the import contracts (make test runs them too)
	bash scripts/bootstrap.sh
	.venv/bin/ruff check app tests
	.venv/bin/ruff format --check app tests
	.venv/bin/mypy
	.venv/bin/lint-imports --no-cache

migrate:
	bash scripts/bootstrap.sh
	.venv/bin/open311 migrate

lock:  ## re-compile the lock files after editing pyproject.toml (keeps every pin that still fits)
	bash scripts/lock.sh

upgrade:  ## newest releases within pyproject.toml's ranges into the lock files, then every test
	bash scripts/lock.sh --upgrade
	bash scripts/test.sh
