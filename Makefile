# fieldsvc: the two commands a new user needs are `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
HOST ?= 127.0.0.1
# QR codes, device links and labels point at the public base URL: by default the address
# `make run` serves on, so `PORT=5077 make run` prints :5077 links. Give FIELDSVC_PUBLIC_BASE_URL
# (e.g. the HTTPS address of a reverse proxy) to override it.
ifeq ($(origin FIELDSVC_PUBLIC_BASE_URL),undefined)
RUN_BASE_URL := http://127.0.0.1:$(PORT)
else
RUN_BASE_URL := $(FIELDSVC_PUBLIC_BASE_URL)
endif
FIELDSVC_DEMO ?= 1
export FIELDSVC_DEMO

.PHONY: run test install postgis system-deps lint bench clean

install: $(VENV)/.installed postgis node_modules/.package-lock.json

# The map library (OpenLayers) from the npm registry, exactly as package-lock.json pins it;
# served from our origin at /maps/ (no CDN). npm comes from Debian when missing.
node_modules/.package-lock.json: package.json package-lock.json
	@command -v npm >/dev/null || { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq npm >/dev/null; }
	npm ci --no-audit --no-fund --loglevel=error

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

# Map tiles on PostgreSQL: Debian's PostGIS package matching the running server's major version
# (else the newest cluster in /etc/postgresql); the migration creates the extension. Nothing on a
# machine without PostgreSQL.
PG_URL ?= $(or $(FIELDSVC_DATABASE_URL:postgresql+psycopg%=postgresql%),$(FIELDSVC_TEST_POSTGRES_URL),postgresql://postgres@127.0.0.1:5432/postgres)
postgis:
	@pg=$$(psql "$(PG_URL)" -tAc 'SHOW server_version_num' 2>/dev/null | cut -c1-2); \
	[ -n "$$pg" ] || pg=$$(ls /etc/postgresql 2>/dev/null | sort -n | tail -1); \
	if [ -n "$$pg" ] && ! dpkg -s postgresql-$$pg-postgis-3 >/dev/null 2>&1; then \
	  echo "installing: postgresql-$$pg-postgis-3"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql-$$pg-postgis-3 >/dev/null; \
	fi

# System packages the PDFs and browser tests need: poppler (pdftoppm, pdffonts),
# a CJK font to embed in PDFs and for Chromium, and Chromium itself; a headless Java
# for ODK Validate (shipped in pyxform), which checks the served XForms in the tests.
system-deps:
	@missing=""; \
	command -v pdftoppm >/dev/null || missing="$$missing poppler-utils"; \
	test -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc || missing="$$missing fonts-wqy-microhei"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v java >/dev/null || missing="$$missing default-jre-headless"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

run: install
	$(BIN)/flask --app app db upgrade
	@if [ "$(FIELDSVC_DEMO)" != "0" ]; then FIELDSVC_PUBLIC_BASE_URL='$(RUN_BASE_URL)' $(BIN)/flask --app app demo --if-empty; fi
	@echo "fieldsvc: open $(RUN_BASE_URL)/console/ and sign in (demo: official / demo-password; lab / demo-password)"
	FIELDSVC_PUBLIC_BASE_URL='$(RUN_BASE_URL)' $(BIN)/gunicorn --bind $(HOST):$(PORT) --workers 2 --threads 4 --access-logfile - app:app

test: install system-deps
	$(BIN)/ruff check .
	$(BIN)/pytest -q

lint: install
	$(BIN)/ruff check .

bench: install
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) instance
