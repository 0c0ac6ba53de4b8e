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

.PHONY: run test install system-deps lint bench clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@

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
