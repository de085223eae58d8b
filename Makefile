# The two commands of the README.
#   make serve   install GridPulse, fill the store with the demo district if empty, serve on :8501
#   make test    install everything (PostGIS, Chromium, fonts, Python packages) and run all tests
.PHONY: serve test lint docs

serve:
	bash .ci/setup.sh
	.venv/bin/gridpulse serve

test:
	bash .ci/test.sh

lint:
	.venv/bin/ruff check .

docs:
	.venv/bin/python -m layers.schema
