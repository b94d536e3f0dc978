# One command to run the server, one to run every test. See README.md.
.PHONY: run test lint migrate

run:  ## set up, load the Toronto demo and serve on the embedded default
	bash scripts/run.sh

test:  ## set up, provision PostgreSQL + PostGIS, lint, run all tests on both backends
	bash scripts/test.sh

lint:
	bash scripts/bootstrap.sh
	.venv/bin/ruff check app tests
	.venv/bin/ruff format --check app tests

migrate:
	bash scripts/bootstrap.sh
	.venv/bin/open311 migrate
