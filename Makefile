# tongban — `make run` and `make test` work on a fresh machine with Python 3.11:
# they build .venv from uv.lock (uv itself is bootstrapped into build/uv from PyPI).
PY ?= python3.11
UV_VERSION := 0.13.9
UV := build/uv/bin/uv
VENV := .venv
STAMP := $(VENV)/.tongban-synced
export DO_NOT_TRACK := 1
export GX_ANALYTICS_ENABLED := false
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export AIRFLOW__CORE__PARALLELISM := 4

.PHONY: env run test check generate airflow clean

$(UV):
	$(PY) -m venv build/uv
	build/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PY)
	touch $@

env: $(STAMP)

run: env  ## the main job: four province catalogues -> standard -> gate -> exchange
	$(VENV)/bin/tongban run

test: env
	$(VENV)/bin/pytest

check: env  ## the committee's lint, generated files in sync, lint
	$(VENV)/bin/tongban standards check
	$(VENV)/bin/ruff check tongban dags tests

AIRFLOW_PORT ?= 8080

airflow: env  ## Airflow UI + scheduler for dags/ at http://127.0.0.1:$(AIRFLOW_PORT) (no login); Ctrl-C stops it
	AIRFLOW__API__PORT=$(AIRFLOW_PORT) AIRFLOW__LOGGING__LOGGING_LEVEL=INFO \
		$(VENV)/bin/python -m tongban.airflow_env serve

generate: env
	$(VENV)/bin/tongban generate

clean:
	rm -rf build exchange feedback
