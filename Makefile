# The two commands of the README, plus the developer's helpers. Each one sets itself up.
.PHONY: demo test lint format bench build clean

PYTEST_ARGS ?=

demo:  ## the example site on the embedded local engine, with one sample upload processed
	scripts/demo.sh

test:  ## the test suite (SQLite; DATABASE_URL=postgres://... for PostgreSQL; DJANGO_SERIES=5.2)
	scripts/test.sh $(PYTEST_ARGS)

lint:  ## ruff, ruff format --check, mypy, and the import contracts of .importlinter
	@venv=$$(scripts/bootstrap.sh dev | tail -1); \
	$$venv/bin/ruff check . && $$venv/bin/ruff format --check . && $$venv/bin/mypy tapestry_media \
		&& $$venv/bin/lint-imports

format:
	@venv=$$(scripts/bootstrap.sh dev | tail -1); $$venv/bin/ruff format . && $$venv/bin/ruff check --fix .

bench:
	scripts/bench.sh

build:  ## a wheel and an sdist in dist/, checked by twine (the README installs from them)
	@venv=$$(scripts/bootstrap.sh dev | tail -1); rm -rf dist; \
	$$venv/bin/python -m build --outdir dist . >/dev/null && $$venv/bin/twine check --strict dist/* && ls dist

clean:
	rm -rf .venv .venv-dj52 dist build *.egg-info example_project/var
