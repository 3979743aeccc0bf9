# The two commands: `make run` (install, then start the dashboard) and `make test` (install, then
# lint and run every test). Both create .venv on first use and reinstall only when requirements change.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8501

.PHONY: run test demo lint system-packages ocr clean

$(VENV)/.runtime: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime ocr
	$(PY) -m aixchange_images up --port $(PORT)

# The lettering check reads with Debian's English tesseract model: installed when we are root; without
# it the dashboard still runs, and each candidate's lettering check says how to install it.
ocr:
	@ls /usr/share/tesseract-ocr/*/tessdata/eng.traineddata >/dev/null 2>&1 || \
	{ if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr >/dev/null || true; \
	  else echo "note: the lettering check needs Debian's tesseract-ocr: sudo apt-get install tesseract-ocr"; fi; }

demo: $(VENV)/.runtime
	$(PY) -m aixchange_images demo-data

# The browser test needs Debian's chromium, the second run a PostgreSQL server, the job tests a
# redis-server and the lettering check tesseract-ocr; all are installed here when we are root (CI is).
system-packages:
	@missing=""; command -v chromium >/dev/null 2>&1 || missing="chromium"; \
	ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v tesseract >/dev/null 2>&1 || missing="$$missing tesseract-ocr"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "The tests need Debian's$$missing: sudo apt-get install$$missing"; exit 1; fi; fi

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The whole suite twice: on SQLite (the default), then on a throwaway PostgreSQL server.
test: $(VENV)/.dev system-packages lint
	$(PY) -m pytest
	tests/with_postgres.sh $(PY) -q

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
