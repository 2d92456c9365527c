# The commands the README names. Everything runs from a virtualenv in .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FUZZ_SECONDS ?= 600

.PHONY: demo test lint bench fuzz deps-debian clean

$(BIN)/storagenode-exporter: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,fuzz]'
	touch $@

## demo: run the exporter against the embedded simulated node on 127.0.0.1:$(PORT)
## (PORT=9184 by default; API_PORT for the simulated node API, a free one by default)
PORT ?= 9184
API_PORT ?= 0
demo: $(BIN)/storagenode-exporter
	$(BIN)/storagenode-exporter demo --web.listen-address 127.0.0.1:$(PORT) --api.port $(API_PORT)

## test: lint and run the whole test suite
test: $(BIN)/storagenode-exporter
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -rs -p no:cacheprovider

lint: $(BIN)/storagenode-exporter
	$(BIN)/ruff check .

## bench: throughput, CPU and memory against mtail (see bench/README.md)
bench: $(BIN)/storagenode-exporter
	$(BIN)/python bench/run.py

## fuzz: the parser and the C hot path (ASan+UBSan) under Atheris, FUZZ_SECONDS per harness
fuzz: $(BIN)/storagenode-exporter
	$(BIN)/python fuzz/run.py --seconds $(FUZZ_SECONDS)

## deps-debian: the real Prometheus, Alertmanager, mtail, openssl and Chromium (the status
## page test) the tests run, clang with its sanitizer runtimes for the fuzz build, and a
## Docker engine, debootstrap and docker-compose for the image and stack tests (root)
deps-debian:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		prometheus prometheus-alertmanager mtail openssl chromium clang libclang-rt-dev \
		docker.io debootstrap docker-compose

clean:
	rm -rf $(VENV) build *.egg-info fuzz/build
