# The two commands of README.md. Each sets up its own virtual environment (.venv)
# with the versions pinned in constraints-ci.txt, then runs.
#
#   make conformance   the conformance suite against the installed frameworks -> lossconf-report/
#   make test          the project's own tests (oracle, harness, reports, detection power)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
REPORT_DIR ?= lossconf-report
# Extra pytest arguments, e.g. make conformance ARGS="--adapter torch --dtype float32"
ARGS ?=
# What the default set-up installs: the frameworks whose install is small and quick here
# (torch, tensorflow-cpu, jax+optax, mlx[cpu] ~40 MB, onnx+onnxruntime ~110 MB). PaddlePaddle
# (~870 MB, ~3.5 min) is left out: make EXTRAS=torch,tensorflow,jax,mlx,onnxruntime,paddle,dev
EXTRAS ?= torch,tensorflow,jax,mlx,onnxruntime,dev
# One stamp per set of extras: another EXTRAS installs into the same .venv.
comma  := ,
STAMP  := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
# A hung item (a framework stuck in native code) is ended after this many seconds by
# pytest-timeout's thread method; xdist replaces the worker and records the case.
TIMEOUT ?= 900

.PHONY: conformance test setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints-ci.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints-ci.txt -e '.[$(EXTRAS)]'
	touch $(STAMP)

# pytest exit code 5 (nothing collected) must never pass silently.
define run_pytest
	$(PY) -m pytest $(1); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; exit $$rc
endef

# --assert=plain: suites/ has no assert statement, and rewriting every module of the pytest
# plugins (Hypothesis's 73, anyio's 30) costs ~1 CPU s per process where no bytecode is cached.
conformance: $(STAMP)
	$(call run_pytest,suites -n 2 -p no:cacheprovider --assert=plain --timeout $(TIMEOUT) --timeout-method thread --max-worker-restart 50 --report-dir $(REPORT_DIR) $(ARGS))

test: $(STAMP)
	$(call run_pytest,tests -n 2 -p no:cacheprovider $(ARGS))

clean:
	rm -rf $(VENV) $(REPORT_DIR) .pytest_cache .hypothesis
