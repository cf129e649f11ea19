# Two jobs for a fresh clone: `make tour` (the main job) and `make test`.
# Each creates .venv and installs what it needs the first time.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TOUR_DIR ?= bnlab-tour

.PHONY: tour demo test lint fonts clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU wheel first: an unpinned torch would pull a multi-gigabyte CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The figures write Chinese section titles: they need a CJK font (Debian: fonts-wqy-microhei).
fonts:
	@if ! fc-list 2>/dev/null | grep -qi "WenQuanYi Micro Hei"; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq fonts-wqy-microhei fontconfig >/dev/null \
		&& rm -rf $$HOME/.cache/matplotlib; \
	fi

tour: $(STAMP) fonts
	$(BIN)/bnlab tour --out $(TOUR_DIR)

demo: $(STAMP)
	$(BIN)/bnlab demo

test: $(STAMP) fonts
	$(BIN)/ruff check .
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 -q

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis $(TOUR_DIR)
