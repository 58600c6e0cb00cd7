# Shortcuts; the README's two commands need none of these.
PY ?= .venv/bin/python

.PHONY: kernels check-kernels test demo lint

kernels:          ## regenerate the kernels/ gallery from examples/*.fd
	$(PY) -m fusiondsl.cli.gallery

check-kernels:    ## diff kernels/ against what the compiler emits now
	$(PY) -m fusiondsl.cli.gallery --check

test:
	$(PY) -m pytest

demo:
	.venv/bin/fusiondsl demo examples

lint:
	.venv/bin/ruff check fusiondsl tests benchmarks
