# Atelier: `make run` serves the sample study day with its mail job; `make test` runs every check.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
SAMPLE_EVENT := events/journee-etude-mutualisation.toml
# `make run PORT=5001 MAIL_PORT=2525` when 5000 (AirPlay on macOS) or 8025 (Mailpit, MailHog) is
# taken; make hands MAIL_PORT to the commands' environment, where the settings read it.
PORT ?= 5000

.PHONY: install run test lint translations-extract clean

install: $(VENV)/.installed static/vendor/htmx.min.js translations/en/LC_MESSAGES/messages.mo

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# htmx comes from the npm package pinned in package.json, never from a CDN.
static/vendor/htmx.min.js: package.json
	npm install --no-audit --no-fund --loglevel=error
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js $@

translations/en/LC_MESSAGES/messages.mo: translations/en/LC_MESSAGES/messages.po $(VENV)/.installed
	$(BIN)/pybabel compile --use-fuzzy -d translations

# Serves http://127.0.0.1:$(PORT) with the sample event moved 30 days ahead, the mail job and a
# local SMTP sink whose mails show at http://127.0.0.1:$(PORT)/dev/mails.
run: install
	$(FLASK) db upgrade
	$(FLASK) event load $(SAMPLE_EVENT) --date +30d
	MAIL_SINK_DIR=instance/mails $(FLASK) dev --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest

# After changing user-facing text: refresh the catalogue, then translate the new entries.
translations-extract: install
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location --sort-output \
		--project Atelier -o translations/messages.pot .
	$(BIN)/pybabel update -i translations/messages.pot -d translations --no-fuzzy-matching \
		--ignore-obsolete

clean:
	rm -rf $(VENV) node_modules static/vendor instance/mails .pytest_cache .ruff_cache
