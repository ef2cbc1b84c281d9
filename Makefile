# alarmflow — every target sets itself up; `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
AF     := $(BIN)/alarmflow

# The test stack runs on its own port and data, so it never touches a demo broker.
TEST_ENV := ALARMFLOW_KAFKA_BOOTSTRAP=127.0.0.1:29092 ALARMFLOW_KAFKA_CONTROLLER_PORT=29093 \
            ALARMFLOW_KAFKA_HOME=var/test-kafka

# The fault suite has a broker of its own too: it stops and restarts it (F3). Its ports stay below Linux's
# ephemeral range (32768-60999): a client reconnecting to a stopped broker on a port in that range can be
# handed the very same port as its own and connect to itself, and the restarted broker then cannot bind.
CHAOS_ENV := ALARMFLOW_KAFKA_BOOTSTRAP=127.0.0.1:19092 ALARMFLOW_KAFKA_CONTROLLER_PORT=19093 \
             ALARMFLOW_KAFKA_HOME=var/chaos-kafka

.PHONY: install broker-jars k8s-tools prometheus-tools k8s-check clients browser demo test chaos unit lint typecheck bench clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	@mkdir -p var
	@echo "installing Python packages into $(VENV) (log: var/pip.log)"
	@{ $(BIN)/pip install --upgrade pip && $(BIN)/pip install -r requirements-dev.lock \
	   && $(BIN)/pip install --no-deps -e . ; } > var/pip.log 2>&1 || { tail -40 var/pip.log; exit 1; }
	touch $@

broker-jars: $(STAMP)
	$(BIN)/python -c "from streams.kafka_local import BrokerPaths, resolve_jars; from streams.settings import Settings; resolve_jars(BrokerPaths(Settings.from_env().kafka_home))"

# What tests/unit/test_k8s_manifests.py validates deploy/k8s with: kustomize, kubeconform, the Kubernetes schemas and
# the Strimzi and KEDA CRDs, pinned, into var/tools (deploy/k8s/tools/install.py). A few minutes the first time;
# once there, each step is skipped.
k8s-tools: $(STAMP)
	@$(BIN)/python deploy/k8s/tools/install.py

# A real Prometheus and promtool, for the alert-rule tests and the scrape test (tests/*/test_prometheus_*.py,
# tests/integration/test_metrics.py): Debian's package, skipped when both are on PATH. The tests start their own
# server (own config, data and loopback port); the package's service is stopped and disabled where systemd runs it.
prometheus-tools:
	@if ! command -v prometheus > /dev/null || ! command -v promtool > /dev/null; then \
	  mkdir -p var; echo "installing Debian's prometheus (log: var/apt-prometheus.log)"; \
	  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y \
	    --no-install-recommends prometheus; } > var/apt-prometheus.log 2>&1 || { tail -30 var/apt-prometheus.log; exit 1; }; \
	  if [ -d /run/systemd/system ]; then systemctl disable --now prometheus > /dev/null 2>&1 || true; fi; \
	fi

# Build every kustomization under deploy/k8s and validate it (no cluster, no network).
k8s-check: k8s-tools
	$(BIN)/pytest tests/unit/test_k8s_manifests.py

# The ClickHouse clients that tests/integration/test_clickhouse_http.py runs against a worker: the official npm
# @clickhouse/client (locked in tests/clients/node) and JDBC driver (tests/clients/jdbc/pom.xml, from Maven Central).
NODE_CLIENT := tests/clients/node/node_modules/.installed
JDBC_CLIENT := tests/clients/jdbc/target/.built
clients: $(NODE_CLIENT) $(JDBC_CLIENT)

$(NODE_CLIENT): tests/clients/node/package.json tests/clients/node/package-lock.json
	cd tests/clients/node && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(JDBC_CLIENT): tests/clients/jdbc/pom.xml tests/clients/jdbc/src/main/java/alarmflow/JdbcCheck.java
	cd tests/clients/jdbc && mvn -B -q package
	touch $@

# The board's browser test drives Debian's chromium through Debian's chromedriver (selenium, no driver download);
# a CJK font, so its screenshots show the Chinese labels.
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-microhei.ttc
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] && [ -f $(CJK_FONT) ]; then :; else \
	  echo "installing chromium, chromium-driver and fonts-wqy-microhei (apt-get)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium chromium-driver \
	    fonts-wqy-microhei; fi

# DEMO_ARGS=--stay keeps the worker and its live board up after the report, until Ctrl-C.
demo: $(STAMP)
	$(AF) demo $(DEMO_ARGS)

test: $(STAMP) k8s-tools prometheus-tools clients browser
	@$(TEST_ENV) $(AF) kafka up
	@set +e; $(TEST_ENV) $(BIN)/pytest $(PYTEST_ARGS); rc=$$?; \
	  $(TEST_ENV) $(AF) kafka down --purge; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

# The fault-injection suite (also run by .ci/run): every fault against a clean run, a table of invariants.
chaos: $(STAMP)
	@$(CHAOS_ENV) $(AF) kafka up
	@set +e; $(CHAOS_ENV) $(BIN)/python -m chaos $(CHAOS_ARGS); rc=$$?; \
	  $(CHAOS_ENV) $(AF) kafka down --purge; exit $$rc

# Not part of `make test`: it runs its own broker on its own ports and takes a while.
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

unit: $(STAMP) k8s-tools prometheus-tools
	$(BIN)/pytest tests/unit

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
