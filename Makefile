# The two commands a user needs; each sets everything up itself (scripts/bootstrap).
PY := .venv/bin/python

.PHONY: bench test venv clean

bench: venv   ## run the benchmark suite (about 2 minutes on 2 cores)
	$(PY) -m scripts.bench $(ARGS)

test: venv    ## run the test suite
	$(PY) -m pytest -n 2 -q $(ARGS)

venv:
	scripts/bootstrap

clean:
	rm -rf .venv
