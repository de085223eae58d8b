# The two commands of the README.
#   make serve   install GridPulse, fill the store with the demo district if empty, serve on :8501
#   make test    install everything (PostGIS, Chromium, fonts, Python packages) and run all tests
.PHONY: serve test lint docs

# `make serve` installs only when pyproject.toml changed since the last install (pip would
# otherwise spend seconds re-checking every dependency on each start).
.venv/.installed: pyproject.toml
	bash .ci/setup.sh
	touch $@

serve: .venv/.installed
	.venv/bin/gridpulse serve

test:
	bash .ci/test.sh

lint:
	.venv/bin/ruff check .

docs:
	.venv/bin/python -m layers.schema
