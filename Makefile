# Two jobs for a fresh clone: `make tour` (the main job) and `make test`.
# Each creates .venv and installs what it needs the first time.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOUR_DIR ?= bnlab-tour

.PHONY: tour demo serve test lint system system-test apt kernels bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU wheel first: an unpinned torch would pull a multi-gigabyte CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# System packages, from Debian's apt where apt exists: a CJK font for the figures' Chinese
# (fonts-wqy-microhei, fontconfig), the real Fashion-MNIST for the experiments
# (dataset-fashion-mnist, 30 MB) and a C++ compiler for the fused CPU kernels (g++).
# `make tour SYSTEM=0` / `make test SYSTEM=0` skip this step.
SYSTEM ?= 1
APT_PACKAGES := fonts-wqy-microhei fontconfig dataset-fashion-mnist g++
# The explorer's browser tests drive Debian's Chromium (no browser download needed).
APT_TEST_PACKAGES := $(APT_PACKAGES) chromium

system:
	@$(MAKE) --no-print-directory apt PACKAGES="$(APT_PACKAGES)"

system-test:
	@$(MAKE) --no-print-directory apt PACKAGES="$(APT_TEST_PACKAGES)"

apt:
	@if [ "$(SYSTEM)" = 0 ]; then echo "SYSTEM=0: not installing $(PACKAGES)"; exit 0; fi; \
	missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then \
		echo "no apt-get here: install$$missing yourself, or run with SYSTEM=0"; exit 0; \
	fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	echo "installing with apt-get:$$missing"; \
	$$SUDO apt-get update && $$SUDO apt-get install -y $$missing \
	&& rm -rf $$HOME/.cache/matplotlib

# The fused CPU kernels, compiled once per machine (about 2 s) into ~/.cache/bnlab/kernels;
# a no-op when they are cached.  Without a compiler bnlab uses its portable kernels.
kernels: $(STAMP)
	@$(BIN)/python -m bnlab.backends.fused

tour: $(STAMP) system kernels
	$(BIN)/bnlab tour --out $(TOUR_DIR)

demo: $(STAMP)
	$(BIN)/bnlab demo

serve: $(STAMP)
	$(BIN)/bnlab serve

bench: $(STAMP) system kernels
	$(BIN)/bnlab bench --threads 2 --json docs/results/speed.json

test: $(STAMP) system-test kernels
	$(BIN)/ruff check .
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis $(TOUR_DIR)
