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

.PHONY: env env-spark run samples test browser postgres check generate airflow serve bench mutate clean

# Synthetic births and business licences (no real ones can be public), one delivery per province
# in its own shape with injected defects and an answer key: see docs/samples.md.
SAMPLE_ROWS ?= 50000
SAMPLE_SEED ?= 20261127
SAMPLES := build/inbox/.samples-$(SAMPLE_ROWS)-$(SAMPLE_SEED)

$(UV):
	$(PY) -m venv build/uv
	build/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --compile-bytecode --python $(PY)
	touch $@

env: $(STAMP)

# the optional Spark engine (issue 19: pyspark + dbt-spark, the `spark` extra): installed by
# `make test` for the parity tests, never by `make env`/`make run`. After the plain sync above
# (which removes extras) this stamp is older than $(STAMP) and syncs the extra again.
SPARK_STAMP := $(VENV)/.tongban-synced-spark

$(SPARK_STAMP): $(STAMP)
	$(UV) sync --frozen --compile-bytecode --python $(PY) --extra spark
	touch $@

env-spark: $(SPARK_STAMP)

$(SAMPLES): $(STAMP) $(wildcard tongban/sample/*.py)
	rm -f build/inbox/.samples-*
	$(VENV)/bin/tongban sample births --rows $(SAMPLE_ROWS) --seed $(SAMPLE_SEED) --out build/inbox
	$(VENV)/bin/tongban sample licenses --rows $(SAMPLE_ROWS) --seed $(SAMPLE_SEED) --out build/inbox
	touch $@

samples: $(SAMPLES)  ## write the synthetic deliveries into build/inbox (SAMPLE_ROWS per province)

# ENGINE: where dbt builds the models (issue 19): duckdb (the default; installs nothing new) or spark
# (a local Spark through dbt-spark: installs the spark extra first, make env-spark; Java 17 on the PATH)
ENGINE ?= duckdb
ENGINE_ENV := $(if $(filter spark,$(ENGINE)),env-spark,env)

run: $(ENGINE_ENV) $(SAMPLES)  ## the main job: every province's deliveries -> standard -> gate -> exchange (ENGINE=spark: on Spark)
	@# exit 3: a delivery was held by its gate (the summary and the feedback say why), not a failure
	$(VENV)/bin/tongban run --engine $(ENGINE) || [ $$? -eq 3 ]

test: env-spark browser postgres
	$(VENV)/bin/pytest

# tests/browser drives Debian's chromium through chromedriver (Selenium) and screenshots the pages, whose
# Chinese needs a CJK font (the pages and charts ask for Noto Sans CJK SC): installed with apt when missing
# and running as root (a bare CI machine), otherwise `make test` stops and says how to install them
CHROMIUM := /usr/bin/chromium
CHROMEDRIVER := /usr/bin/chromedriver
BROWSER_PACKAGES := chromium chromium-driver fonts-noto-cjk

browser:  ## Debian's chromium, chromium-driver and a CJK font for the browser tests (apt-get, as root)
	@if [ ! -x $(CHROMIUM) ] || [ ! -x $(CHROMEDRIVER) ] || [ -z "$$(fc-list :lang=zh 2>/dev/null)" ]; then \
		if [ "$$(id -u)" -ne 0 ]; then \
			echo "browser tests need Debian's chromium, chromedriver and a CJK font: run 'sudo apt-get install -y $(BROWSER_PACKAGES)' (or make test as root)"; \
			exit 1; \
		fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y $(BROWSER_PACKAGES) \
			|| { apt-get update && apt-get install -y $(BROWSER_PACKAGES); }; \
	fi

# tests/integration/test_dag_postgres.py runs the DAG against a Postgres metadata DB in a throwaway
# cluster (initdb in a temporary directory): Debian's postgresql, installed with apt when missing and
# running as root (a bare CI machine), otherwise `make test` stops and says how to install it
POSTGRES_PACKAGES := postgresql

postgres:  ## Debian's PostgreSQL server binaries for the Postgres metadata-DB test (apt-get, as root)
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		if [ "$$(id -u)" -ne 0 ]; then \
			echo "the Postgres test needs Debian's postgresql: run 'sudo apt-get install -y $(POSTGRES_PACKAGES)' (or make test as root, or TONGBAN_SKIP_POSTGRES=1)"; \
			exit 1; \
		fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y --no-install-recommends $(POSTGRES_PACKAGES) \
			|| { apt-get update && apt-get install -y --no-install-recommends $(POSTGRES_PACKAGES); }; \
	fi

check: env  ## the committee's lint, generated files in sync (exit 1 while stale), lint
	$(VENV)/bin/tongban standards check
	$(VENV)/bin/ruff check tongban dags tests bench

AIRFLOW_PORT ?= 8080

airflow: env  ## Airflow UI + scheduler for dags/ at http://127.0.0.1:$(AIRFLOW_PORT) (no login); Ctrl-C stops it
	AIRFLOW__API__PORT=$(AIRFLOW_PORT) AIRFLOW__LOGGING__LOGGING_LEVEL=INFO \
		$(VENV)/bin/python -m tongban.airflow_env serve

SERVE_HOST ?= 127.0.0.1
SERVE_PORT ?= 8000

serve: env  ## the served exchange for consumers at http://$(SERVE_HOST):$(SERVE_PORT)/docs (docs/consumers.md); Ctrl-C stops it
	$(VENV)/bin/tongban serve --host $(SERVE_HOST) --port $(SERVE_PORT)

# the tracked models/, expectations/ (and JSON Schemas) from standards/; `tongban run` never writes
# them (it builds from a project generated under build/dbt/project); tests/standards fails while they are stale
generate: env
	$(VENV)/bin/tongban generate

# tongban end to end vs a hand-written DuckDB lower bound vs pandas + GX (bench/harness.py):
# BENCH_SIZES is N, the rows delivered over all 8 deliveries (100000, 1m, 5m, 10m, ...), comma-separated;
# results accumulate in build/bench/results.json and are rendered into docs/benchmarks.md.
# BENCH_PATHS: a subset of tongban,lower_bound,pandas_gx (pandas_gx runs only up to N=1m anyway);
# the paths not run keep their earlier figures. BENCH_XLSX_MAX_ROWS: rows per 安徽 XLSX part
# (default one sheet, 1,048,575; smaller to try multi-part deliveries on a small N).
# BENCH_SMOKE=1: N=4000, one run, results under build/bench-smoke only (what tests/bench runs).
# ENGINE=spark: tongban on Spark too (path tongban_spark, beside tongban on DuckDB; the spark extra is
# installed first); its table row states the fixed cost of starting the local Spark.
BENCH_SIZES ?= 100000
BENCH_REPEAT ?= 3
BENCH_SMOKE ?=
BENCH_PATHS ?= $(if $(filter spark,$(ENGINE)),tongban$(,)tongban_spark)
BENCH_XLSX_MAX_ROWS ?=
, := ,

bench: $(ENGINE_ENV)  ## measure; not part of `make test`
	BENCH_MAKE_COMMAND="make bench $(if $(filter 1,$(BENCH_SMOKE)),BENCH_SMOKE=1,BENCH_SIZES=$(BENCH_SIZES) BENCH_REPEAT=$(BENCH_REPEAT))$(if $(BENCH_PATHS), BENCH_PATHS=$(BENCH_PATHS))$(if $(BENCH_XLSX_MAX_ROWS), BENCH_XLSX_MAX_ROWS=$(BENCH_XLSX_MAX_ROWS))" \
	BENCH_PATHS="$(BENCH_PATHS)" BENCH_XLSX_MAX_ROWS="$(BENCH_XLSX_MAX_ROWS)" \
		$(VENV)/bin/python -m bench.harness run --sizes $(BENCH_SIZES) --repeat $(BENCH_REPEAT) $(if $(filter 1,$(BENCH_SMOKE)),--smoke)

# Mutation testing (mutmut 3, dev dependency) of the invariant modules with the fast tests that guard
# them ([tool.mutmut] in pyproject.toml); not part of `make test`. MUTATE: mutant names to run, e.g.
# tongban.common.sqlquote* (about a minute) or tongban.common.pii* (long); MUTATE= (empty) runs sqlquote, pii and gate.
# Survivors: `.venv/bin/mutmut results`, `.venv/bin/mutmut show NAME`; see docs/mutation.md.
# The reference directory is given absolute: the tests run in a copy under mutants/, whose
# default ../shared/reference would be another place.
MUTATE ?= tongban.common.sqlquote*
MUTATE_CHILDREN ?= 1

mutate: env  ## mutation testing; not part of `make test`
	rm -rf mutants
	TONGBAN_REFERENCE_DIR=$(abspath $(or $(TONGBAN_REFERENCE_DIR),../shared/reference)) \
		$(VENV)/bin/mutmut run --max-children $(MUTATE_CHILDREN) $(MUTATE)
	$(VENV)/bin/mutmut results

clean:
	rm -rf build exchange feedback mutants
