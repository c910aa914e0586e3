# Two entry points for a fresh machine with Python 3.11: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO := demo-output

.PHONY: install demo test test-fast lint clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py intent_edge/runtime/_fastencode.c intent_edge/runtime/_native.c \
		intent_edge/runtime/kernel/ie_kernel.h
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[train,cpu,dev]'
	touch $@

# The whole pipeline on the built-in synthetic data: data -> train (evaluate, export, parity) -> compress -> score,
# then clickstreams: event log -> GRU -> per-click streaming scores.
demo: install
	$(BIN)/intent-edge data synth --rows 20000 --seed 0 --out $(DEMO)/sessions.csv
	$(BIN)/intent-edge train $(DEMO)/sessions.csv --label Revenue --out $(DEMO)/bundle --plots $(DEMO)/plots
	$(BIN)/intent-edge compress $(DEMO)/bundle --data $(DEMO)/sessions.csv --target cpu
	$(BIN)/intent-edge info $(DEMO)/bundle
	if command -v cc >/dev/null 2>&1; then \
	  $(BIN)/intent-edge export $(DEMO)/bundle --format c --out $(DEMO)/c-library --build; \
	else echo "no C compiler: the C library is not built (apt-get install gcc)"; fi
	$(BIN)/intent-edge data synth --rows 1000 --seed 1 --out $(DEMO)/new-sessions.csv
	$(BIN)/intent-edge score $(DEMO)/bundle $(DEMO)/new-sessions.csv --output $(DEMO)/scored.csv --keep all \
	  --monitor $(DEMO)/scored-sketch.json
	$(BIN)/intent-edge data synth --rows 5000 --seed 2 --shift season --out $(DEMO)/season-sessions.csv
	$(BIN)/intent-edge monitor $(DEMO)/bundle $(DEMO)/scored-sketch.json $(DEMO)/season-sessions.csv \
	  --json $(DEMO)/monitoring.json --plots $(DEMO)/monitoring
	$(BIN)/intent-edge evaluate $(DEMO)/new-sessions.csv --bundle $(DEMO)/bundle --json $(DEMO)/evaluation.json \
	  --explain --plots $(DEMO)/explanations
	$(BIN)/intent-edge data clickstream --sessions 8000 --seed 0 --out $(DEMO)/events.csv
	$(BIN)/intent-edge train $(DEMO)/events.csv --model gru --out $(DEMO)/gru-bundle
	printf '%s\n' '{"session_id": "s1", "event": "search", "timestamp": 0}' \
	  '{"session_id": "s1", "event": "product", "timestamp": 20000}' \
	  '{"session_id": "s1", "event": "cart", "timestamp": 75000}' | $(BIN)/intent-edge stream $(DEMO)/gru-bundle

test: install
	$(BIN)/python -m pytest

# ruff, with the rule set in pyproject.toml (ruff is pinned in the dev extra).
lint: install
	$(BIN)/ruff check .

# Everything but the real-data bar (which trains 5 models): a quicker loop while developing.
test-fast: install
	$(BIN)/python -m pytest -m 'not slow'

clean:
	rm -rf $(DEMO) .pytest_cache
