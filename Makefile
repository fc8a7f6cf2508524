# pixelis_verl: two commands on a fresh machine — `make install`, then `make test`.
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Where the tiny models are built once (tokenizer, configs, warm start); tests and the demo read it.
TINY_DIR ?= $(HOME)/.cache/pixelis_verl/tiny
export PIXELIS_TINY_DIR := $(TINY_DIR)
# Where the learner model tier is built once by `make learner` (not by install or CI); benchmarks read it.
LEARNER_DIR ?= $(HOME)/.cache/pixelis_verl/learner
export PIXELIS_LEARNER_DIR := $(LEARNER_DIR)
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
PYTEST_ARGS ?=

.PHONY: install test test-fast demo demo-sft demo-ttrl demo-eval learner rehearse submit lint format bench lock clean

install:
	@# Headless Chromium renders the trajectory viewer's page in its test (tests/eval); a Debian package, we are root.
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -c constraints/cpu.txt torch==2.13.0
	@# A venv from before OpenCV contrib has the plain headless build, which owns the same cv2 package.
	$(PIP) uninstall -q -y opencv-python-headless opencv-python 2>/dev/null || true
	$(PIP) install -q -c constraints/cpu.txt -e ".[dev]"
	# The OCR engine without its opencv-python requirement, which would clobber OpenCV contrib (see setup.py).
	$(PIP) install -q --no-deps -c constraints/cpu.txt rapidocr_onnxruntime
	$(PY) -m pixelis_verl.tiny --out $(TINY_DIR)

test:
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast:
	$(PY) -m pytest -m "not e2e" $(PYTEST_ARGS)

demo:
	$(PY) -m pixelis_verl.train --config-name rft_tiny_cpu

demo-sft:
	$(PY) -m pixelis_verl.sft --config-name sft_tiny_cpu

# A fresh run directory each time (the TTRL recipe resumes a run directory it finds).
demo-ttrl:
	$(PY) -m pixelis_verl.train --config-name ttrl_tiny_cpu pixelis.run_dir=runs/ttrl_tiny_cpu-$$(date +%Y%m%d-%H%M%S)

# The tiny Qwen3-VL on an 8-question synthetic benchmark, tools vs the tool-free control: report + viewer.
demo-eval:
	$(PY) -m pixelis_verl.evaluate --config-name eval_tiny_cpu

# The learner model tier: a ~7M-parameter Qwen3-VL base, then phase-1 SFT on the card task family in two stages
# through python -m pixelis_verl.sft (recipes/sft_learner_cpu.yaml); ~47 minutes once on 2 cores, cached in LEARNER_DIR.
learner:
	$(PY) -m pixelis_verl.tiny.learner --out $(LEARNER_DIR)

# Every GPU recipe rehearsed on this CPU machine (docs/cluster.md, "Rehearsing the GPU recipes"), or some:
#   make rehearse REHEARSE="rft_qwen25vl_7b ttrl_qwen3vl_8b"
REHEARSE ?=
rehearse:
	$(PY) -m pixelis_verl.rehearse $(REHEARSE)

# A recipe as a Ray job on a running cluster (docs/cluster.md), e.g.
#   make submit RECIPE=rft_qwen25vl_7b OVERRIDES="trainer.nnodes=2" ADDRESS=http://127.0.0.1:8265
RECIPE ?= rft_tiny_cpu
OVERRIDES ?=
ADDRESS ?= $(or $(RAY_API_SERVER_ADDRESS),http://127.0.0.1:8265)
submit:
	$(PY) -m pixelis_verl.submit --address $(ADDRESS) --config-name $(RECIPE) $(OVERRIDES)

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format:
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench:
	@for script in benchmarks/[!_]*.py; do echo "== $$script"; $(PY) $$script || exit 1; done

# Re-pin constraints/cpu.txt from the current venv after changing dependencies in setup.py.
lock:
	@{ sed -n '1,3p' constraints/cpu.txt; $(PIP) freeze --exclude-editable | grep -vi '^pixelis'; } > constraints/cpu.txt.new
	mv constraints/cpu.txt.new constraints/cpu.txt

clean:
	rm -rf runs .pytest_cache .ruff_cache
