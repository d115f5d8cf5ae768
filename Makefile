# Two commands do all set-up on a fresh machine with Python 3.11+ and make:
#   make demo   the whole Webex token procedure against the bundled emulator
#               (make demo-tls: the same over HTTPS, the emulator with a throwaway CA)
#   make test   lint, types and every test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo demo-tls test lint bench clean screenshots

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
		{ echo "wxtoken needs Python 3.11 or newer ($(PYTHON) is older)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

demo-tls: $(STAMP)
	$(BIN)/python scripts/demo.py --tls

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/cli_cold.py
	$(BIN)/python bench/refresh_cpu.py
	$(BIN)/python bench/transport_cpu.py
	$(BIN)/python bench/manager_cached.py
	$(BIN)/python bench/emulator_refresh.py
	$(BIN)/python bench/keeper_scale.py
	$(BIN)/python bench/tls_connect.py
	$(BIN)/python bench/console_dashboard.py

# The console's screenshots in docs/screenshots, taken by its browser tests (needs chromium).
screenshots: $(STAMP)
	SCREENSHOTS_DIR=docs/screenshots $(BIN)/pytest tests/e2e/test_console_browser.py -q

clean:
	rm -rf $(VENV) .demo build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
