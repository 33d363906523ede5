# The workshop's commands. `make` alone lists them.
#
# Everything runs inside .venv, made on first use from the pinned
# requirements files. Nothing is installed system-wide and nothing needs root.

PYTHON ?= python3
PORT ?= 8000
VENV := .venv
PY := $(VENV)/bin/python

STEP1 := step01_sync_consumer
STEP2 := step02_async_consumer
STEP3 := step03_channel_layer
STEP4 := step04_redis_backend

.DEFAULT_GOAL := help
.PHONY: help setup setup-dev wheelhouse step1 step2 step3 step4 step4-cluster step5 step6 \
        step7 step8 redis test clean

help: ## List the commands
	@echo "Real-time Django with Channels: the workshop's commands"
	@echo
	@awk 'BEGIN {FS = ":[^#]*## "} /^[a-z0-9%-]+:.*## / {sub("%", "N", $$1); printf "  make %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo
	@echo "PORT=8001 make step1 serves on another port."

# --- Setting up ---------------------------------------------------------------
# A stamp file records that .venv holds what the requirements ask for, so a
# second `make setup` costs nothing until a requirements file changes.
# With a wheelhouse/ (make wheelhouse), the packages come from it alone:
# no network needed, for a room with no wifi.

WHEELHOUSE := wheelhouse
FROM_WHEELHOUSE = $(if $(wildcard $(WHEELHOUSE)),--no-index --find-links $(WHEELHOUSE))

$(VENV)/.installed: requirements.txt requirements-redis.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "The workshop needs Python 3.10 to 3.14, and $(PYTHON) is " + sys.version.split()[0] + ": install a newer one, then make setup PYTHON=python3.13 (for example).")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(if $(FROM_WHEELHOUSE),@echo "Installing from $(WHEELHOUSE)/ only (no network needed)",$(PY) -m pip install --quiet --upgrade pip)
	$(PY) -m pip install --quiet $(FROM_WHEELHOUSE) -r requirements.txt
	@$(PY) -m workshop.setup_redis $(FROM_WHEELHOUSE)
	@touch $@

# The dev tools also use wheelhouse/ when it has them (make wheelhouse DEV=1).
$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet $(if $(FROM_WHEELHOUSE),--find-links $(WHEELHOUSE)) -r requirements-dev.txt
	@touch $@

setup: $(VENV)/.installed ## Make .venv with all the day needs (once; fast after)

setup-dev: $(VENV)/.installed-dev ## Also the notebooks', slides' and benchmarks' tools

wheelhouse: $(VENV)/.installed ## Every package for every laptop into wheelhouse/ (DEV=1)
	$(PY) -m workshop.wheelhouse $(if $(DEV),--dev)

# --- Running a step -------------------------------------------------------------
# runserver comes from daphne (first in INSTALLED_APPS): it serves WebSockets
# and restarts when you edit the code.

define serve
	$(PY) $(1)/manage.py migrate --verbosity 0
	@echo
	@echo "  $(1) is running: open http://127.0.0.1:$(PORT)/chat/ in two windows"
	@echo "  (Ctrl-C stops it)"
	@echo
	$(2) $(PY) $(1)/manage.py runserver 127.0.0.1:$(PORT)
endef

step1: $(VENV)/.installed ## Run step 1: a synchronous consumer that echoes
	$(call serve,$(STEP1))

step2: $(VENV)/.installed ## Run step 2: the same consumer, asynchronous
	$(call serve,$(STEP2))

step3: $(VENV)/.installed ## Run step 3: rooms, through groups on a channel layer
	$(call serve,$(STEP3))

# workshop.redis uses the Redis at REDIS_URL, or starts one and stops it after.
step4: $(VENV)/.installed ## Run step 4: the channel layer on Redis (started for you)
	$(call serve,$(STEP4),$(PY) -m workshop.redis --)

step4-cluster: $(VENV)/.installed ## Step 4 twice, on ports 8000 and 8001, sharing Redis
	$(PY) $(STEP4)/manage.py migrate --verbosity 0
	@echo
	@echo "  Two servers, one Redis: open http://127.0.0.1:8000/chat/lobby/"
	@echo "  and http://127.0.0.1:8001/chat/lobby/ and chat across them (Ctrl-C stops all)"
	@echo
	$(PY) -m workshop.redis -- sh -c 'cd $(STEP4); \
	    ../$(PY) -m daphne -b 127.0.0.1 -p 8000 mysite.asgi:application & \
	    ../$(PY) -m daphne -b 127.0.0.1 -p 8001 mysite.asgi:application & \
	    wait'

# Step 5 on: the settings read the environment; workshop.production sets safe
# local values, runs migrate and collectstatic, then uvicorn with 2 workers.
# STEP (or the N of stepN-memory, stepN-nginx) is 5 or later.
step5: $(VENV)/.installed ## Run step 5: 2 uvicorn workers, as in production
	$(PY) -m workshop.production 5 --port $(PORT)

step6: $(VENV)/.installed ## Run step 6: outages handled, a page that reconnects
	$(PY) -m workshop.production 6 --port $(PORT)

# DATABASE_URL, if set, picks step 7's database.
step7: $(VENV)/.installed ## Run step 7: messages stored, caught up on reconnect
	$(PY) -m workshop.production 7 --port $(PORT)

step8: $(VENV)/.installed ## Run step 8: users, authors, private rooms
	$(PY) -m workshop.production 8 --port $(PORT)

step%-memory: $(VENV)/.installed ## Step N (5 on) on the in-memory layer: a split room
	$(PY) -m workshop.production $* --port $(PORT) --memory

step%-nginx: $(VENV)/.installed ## Step N (5 on) behind nginx on port 8080
	$(PY) -m workshop.production $* --port $(PORT) --nginx 8080

redis: $(VENV)/.installed ## Run a Redis for step 4 on its own (Ctrl-C stops it)
	$(PY) -m workshop.redis

# --- Testing ----------------------------------------------------------------------

test: $(VENV)/.installed-dev ## Run every test: each step, the notebooks, the tools
	$(PY) -m workshop.runtests

test-step%: $(VENV)/.installed ## Run one step's tests: make test-step1 .. test-step8
	$(PY) -m workshop.runtests step$*

# --- Following along in your own project (mywork/) ---------------------------------

.PHONY: start mywork check catch-up

start: $(VENV)/.installed ## Start your project in mywork/ (FORCE=1: anew)
	$(PY) -m workshop.mywork start $(if $(FORCE),--force)

mywork: $(VENV)/.installed ## Serve mywork/ on http://127.0.0.1:8000/chat/
	$(PY) -m workshop.mywork serve --port $(PORT)

check: $(VENV)/.installed ## Check mywork/ as a step: STEP=1..8 (none: find your step)
	$(PY) -m workshop.check $(STEP) $(if $(VERBOSE),--verbose)

catch-up: $(VENV)/.installed ## Replace mywork/ with a step, keeping a backup: STEP=3
	@test -n "$(STEP)" || { echo "Which step? For example: make catch-up STEP=3"; exit 2; }
	$(PY) -m workshop.mywork catch-up $(STEP)

# --- Notebooks (notebooks/) ----------------------------------------------------
# JupyterLab listens on 127.0.0.1 only: nobody else on the conference wifi can
# reach it. The notebooks are saved with their outputs; notebooks-run is how
# those outputs are refreshed (each notebook in a fresh kernel, top to bottom).
.PHONY: notebooks notebooks-run

notebooks: $(VENV)/.installed-dev ## Open the notebooks in JupyterLab (Ctrl-C stops it)
	$(PY) -m jupyterlab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=notebooks

notebooks-run: $(VENV)/.installed-dev ## Re-run every notebook and save its fresh outputs
	$(PY) -m workshop.notebooks

# --- Slides and the instructor's tools (slides/) ---------------------------------
# The deck is slides/index.md; the steps' code and the notebooks' plots are
# read when it is built (slides/README.md). diff and doctor need only the
# standard library: they run before `make setup` too, with the system's Python.
.PHONY: slides present diff doctor

SLIDES_PORT ?= 8800
TOOL_PY = $(if $(wildcard $(PY)),$(PY),$(PYTHON))

slides: $(VENV)/.installed-dev ## Build the slides into slides/_build/revealjs/
	$(PY) -m sphinx -b revealjs -E -W --keep-going slides slides/_build/revealjs
	@echo
	@echo "  Open slides/_build/revealjs/index.html (no network needed), or: make present"

present: slides ## Serve the slides on 127.0.0.1:8800 (S: speaker view)
	@echo
	@echo "  Slides at http://127.0.0.1:$(SLIDES_PORT)/ (S: speaker view, Ctrl-C stops)"
	@echo
	$(PY) -m http.server --bind 127.0.0.1 --directory slides/_build/revealjs $(SLIDES_PORT)

# With neither FROM nor TO: the usage line. With only one: the same, as an error.
diff: ## What changed: make diff FROM=2 TO=3 (or FROM=mywork)
ifeq ($(and $(FROM),$(TO)),)
	@echo "usage: make diff FROM=2 TO=3   (FROM and TO: a step 0-7, or a folder like mywork)"
	@$(if $(FROM)$(TO),exit 2)
else
	@$(TOOL_PY) -m workshop.diff "$(FROM)" "$(TO)"
endif

doctor: ## Check that this machine is ready for the workshop
	@$(TOOL_PY) -m workshop.doctor --venv $(VENV)

# --- Benchmarks (bench/) ---------------------------------------------------------
# Real daphne and Redis processes on 127.0.0.1, started and stopped for you.
# QUICK=1 runs a short version into bench/results/quick/ (not committed).
.PHONY: bench bench-check

bench: $(VENV)/.installed-dev ## Measure the steps side by side (QUICK=1: a short run)
	$(PY) -m bench $(if $(QUICK),--quick)

bench-check: $(VENV)/.installed ## Measure how long make check takes, in each state
	$(PY) -m bench.check_speed

# --- Tidying up -----------------------------------------------------------------

clean: ## Remove databases, caches, reports (keeps .venv)
	rm -rf .test-results .pytest_cache slides/_build
	find . -path ./$(VENV) -prune -o \( -name db.sqlite3 -o -name __pycache__ \) -print \
	    | xargs rm -rf
