# Two jobs for a fresh clone: `make tour` (the main job) and `make test`.
# Each creates .venv and installs what it needs the first time.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOUR_DIR ?= bnlab-tour

.PHONY: tour demo serve test lint system system-test apt clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU wheel first: an unpinned torch would pull a multi-gigabyte CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# System packages, from Debian's apt where apt exists: a CJK font for the figures' Chinese
# titles, and the real Fashion-MNIST for the experiments.
APT_PACKAGES := fonts-wqy-microhei fontconfig dataset-fashion-mnist
# The explorer's browser tests drive Debian's Chromium (no browser download needed).
APT_TEST_PACKAGES := $(APT_PACKAGES) chromium

system:
	@$(MAKE) --no-print-directory apt PACKAGES="$(APT_PACKAGES)"

system-test:
	@$(MAKE) --no-print-directory apt PACKAGES="$(APT_TEST_PACKAGES)"

apt:
	@missing=""; for p in $(PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ] && command -v apt-get >/dev/null; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		echo "installing$$missing"; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq $$missing >/dev/null \
		&& rm -rf $$HOME/.cache/matplotlib; \
	fi

tour: $(STAMP) system
	$(BIN)/bnlab tour --out $(TOUR_DIR)

demo: $(STAMP)
	$(BIN)/bnlab demo

serve: $(STAMP)
	$(BIN)/bnlab serve

test: $(STAMP) system-test
	$(BIN)/ruff check .
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis $(TOUR_DIR)
