# `make train` and `make test` do all the set-up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ARGS   ?=

.PHONY: install train test test-gpu test-all lint format bench reproduce gpu-check clean

install: $(STAMP)

# Re-installs only when pyproject.toml changes (a no-op when up to date).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,sweep,slurm,tensorboard,mlflow,wandb,export,vision]'
	touch $(STAMP)

train: install
	$(BIN)/dlx train $(ARGS)

# One pytest worker per core (pytest-xdist): most tests wait on a `dlx` subprocess, so two
# workers on 2 cores take ~0.65x the time of one. JOBS=0 runs them in this one process.
JOBS ?= auto
test: install
	$(BIN)/python -m pytest -m "not slow" -n $(JOBS) $(ARGS)

# The device-dependent tests (marked `device`, slow ones too) on DEVICE: cuda, cpu or cpu,cuda;
# empty: cuda where torch sees one, else cpu. `make test-gpu DEVICE=cpu` runs them here.
DEVICE ?=
test-gpu: install
	DLX_TEST_DEVICE=$(DEVICE) $(BIN)/python -m pytest -m device $(ARGS)

test-all: install
	$(BIN)/python -m pytest -n $(JOBS) $(ARGS)

lint: install
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

format: install
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

# dlx vs a minimal loop, Keras 3 and scikit-learn on real MNIST (DLX_DATA_DIR) -> bench/RESULTS.md
bench: install
	$(BIN)/python bench/run.py $(ARGS)

# Every book experiment on real data (DLX_DATA_DIR), SEEDS seeds each -> docs/REPRODUCTION.md
SEEDS ?= 3
reproduce: install
	$(BIN)/python scripts/reproduce.py --seeds $(SEEDS) $(ARGS)

# The accelerated path (bf16, torch.compile, on-device data) against fp32 eager on a CUDA GPU:
# the book's MNIST/CIFAR-10 listings (DLX_DATA_DIR), a table; refuses without CUDA (exit 2).
gpu-check: install
	$(BIN)/python scripts/gpu_check.py $(ARGS)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
