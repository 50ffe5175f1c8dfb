# The two commands of the README. Both bootstrap .venv when it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck bench clean migration

$(VENV): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(VENV)

demo: $(VENV)
	$(BIN)/rollbot demo

test: $(VENV)
	$(BIN)/python -m pytest -q -n 2 --dist worksteal

lint: $(VENV)
	$(BIN)/ruff check bot handlers actions tests bench

# The speed benchmarks (docs/benchmarks.md): each prints its figure next to its goal and writes bench/results/*.json.
# About ten minutes; a shared machine makes the figures noisy, so compare ratios.
BENCHES := bench_cli_startup bench_ack_under_load bench_war_room bench_real_tiers bench_alert_storm bench_fifty_incidents
bench: $(VENV)
	@for b in $(BENCHES); do echo "== $$b"; $(BIN)/python bench/$$b.py || exit 1; done

# mypy's settings (what it checks, and how) are [tool.mypy] in pyproject.toml.
typecheck: $(VENV)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache

# Pre-release the schema is one initial migration, regenerated from the models (after a release: append revisions).
migration: $(VENV)
	rm -f bot/migrations/versions/0001_initial_schema.py /tmp/rollbot-migration.db
	$(BIN)/python -c "from alembic import command; from bot.store.db import alembic_config; \
	command.revision(alembic_config('sqlite:////tmp/rollbot-migration.db'), message='initial schema', autogenerate=True, rev_id='0001')"
	sed -i 's/^Revises: $$/Revises:/' bot/migrations/versions/0001_initial_schema.py
	$(BIN)/ruff check --fix -q bot/migrations || true
