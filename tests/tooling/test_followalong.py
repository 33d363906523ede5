"""Follow-along mode: make start, make catch-up and make check on real folders.

The check runner is proven on the reference steps and on broken copies, so its
verdicts and hints are known, not assumed.
"""
import ast
import os
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from workshop.steps import LAST_STEP, REPO, step_folder

STEP_TESTS = REPO / "tests" / "steps"


@pytest.fixture
def mywork_env(tmp_path):
    """An environment whose mywork/ is in a temporary folder, not the real one."""
    return {**os.environ, "MYWORK_DIR": str(tmp_path / "mywork")}


def test_start_copies_the_starting_point_and_never_overwrites(run, python, mywork_env):
    mywork = Path(mywork_env["MYWORK_DIR"])
    started = run(python, "-m", "workshop.mywork", "start", env=mywork_env)
    assert started.returncode == 0, started.stderr
    assert (mywork / "chat" / "templates" / "chat" / "room.html").is_file()
    assert not (mywork / "chat" / "consumers.py").exists()

    (mywork / "chat" / "consumers.py").write_text("# my typing\n")
    again = run(python, "-m", "workshop.mywork", "start", env=mywork_env)
    assert again.returncode == 1
    assert "FORCE=1" in again.stderr
    assert (mywork / "chat" / "consumers.py").read_text() == "# my typing\n"

    forced = run(python, "-m", "workshop.mywork", "start", "--force", env=mywork_env)
    assert forced.returncode == 0
    [backup] = mywork.parent.glob("mywork.bak-*")
    assert (backup / "chat" / "consumers.py").read_text() == "# my typing\n"
    assert not (mywork / "chat" / "consumers.py").exists()


def test_catch_up_takes_the_step_and_keeps_a_backup_every_time(run, python, mywork_env):
    mywork = Path(mywork_env["MYWORK_DIR"])
    run(python, "-m", "workshop.mywork", "start", env=mywork_env)
    (mywork / "notes.txt").write_text("first try")
    for _ in range(2):  # twice within a second: two distinct backups
        result = run(python, "-m", "workshop.mywork", "catch-up", "3", env=mywork_env)
        assert result.returncode == 0, result.stderr
    consumers = (mywork / "chat" / "consumers.py").read_text()
    assert consumers == (step_folder(3) / "chat" / "consumers.py").read_text()
    backups = sorted(mywork.parent.glob("mywork.bak-*"))
    assert len(backups) == 2
    assert (backups[0] / "notes.txt").read_text() == "first try"


def test_starting_point_is_step1_without_the_consumer():
    """step00_start must not drift from step01: only the lesson differs."""
    def files(folder):
        return {
            path.relative_to(folder) for path in folder.rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.name != "db.sqlite3"
        }

    start, step1 = step_folder(0), step_folder(1)
    assert files(step1) - files(start) == {Path("chat/consumers.py"), Path("chat/routing.py")}
    differing = {
        path for path in files(start) & files(step1)
        if (start / path).read_bytes() != (step1 / path).read_bytes()
    }
    assert differing == {Path("README.md"), Path("mysite/asgi.py")}


def test_every_step_test_declares_what_make_check_shows():
    """The contract of tests/plugin.py: a layer and heading per module, a hint per
    test, and limits marked as such (not by a name prefix)."""
    layers = {}
    for path in sorted(STEP_TESTS.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        values = [node.value for node in tree.body if isinstance(node, ast.Assign)
                  and [ast.unparse(target) for target in node.targets] == ["pytestmark"]]
        # pytestmark is one mark, or a list of marks (a layer and the steps, say).
        marks = [ast.unparse(mark) for value in values
                 for mark in (value.elts if isinstance(value, ast.List) else [value])]
        layer_marks = [mark for mark in marks if mark.startswith("pytest.mark.layer(")]
        assert len(values) == 1 and len(layer_marks) == 1, (
            f"{path.name} needs pytestmark = pytest.mark.layer(number, heading)"
        )
        layers[path.name] = layer_marks[0]
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                decorators = [ast.unparse(d) for d in node.decorator_list]
                assert any(d.startswith("pytest.mark.hint(") for d in decorators), (
                    f"{path.name}::{node.name} has no @pytest.mark.hint"
                )
                assert not node.name.startswith("test_limit_"), (
                    f"{path.name}::{node.name}: mark a limit with @pytest.mark.limit, "
                    "and leave limit_ out of its name"
                )
    assert len(set(layers.values())) == len(layers), f"two modules share a layer: {layers}"


# Each step's suite already runs on its reference folder (make test); what is
# checked here is make check's own plumbing around it (the report, the layers),
# which is the same for every step. Steps 1 and 2 here; step 3 passes its check
# in test_sync_step3.py (the README's synchronous step 3), and the last step,
# with every layer (Redis, workers, nginx, a browser), in .ci/run: make check
# with no step on it, on the newest Python, instead of that step's make test.
# The steps between would add minutes of suites that make test has just run.
@pytest.mark.timeout(900)
@pytest.mark.parametrize("step", [1, 2])
def test_each_reference_step_passes_its_own_check(run, python, step):
    result = run(python, "-m", "workshop.check", str(step), "--project", str(step_folder(step)),
                 timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "expectations met" in result.stdout
    assert "  no  " not in result.stdout


def test_a_later_step_still_meets_an_earlier_steps_lasting_expectations(run, python):
    """step03 checked as step 1: only step 1's own traits and limits are missed."""
    result = run(python, "-m", "workshop.check", "1", "--project", str(step_folder(3)),
                 timeout=600)
    assert result.returncode == 1
    marked = defaultdict(set)  # "yes ", "no  ", ...: the expectations so marked
    for line in result.stdout.splitlines():
        marked[line[2:6]].add(line[8:])
    assert marked["no  "] == {
        "step1 consumer is synchronous",
        "echo does not reach another client in the room",
    }
    assert {"sender receives its own message", "unknown paths are refused"} <= marked["yes "]


def test_layers_on_a_failed_one_are_not_tried_but_keep_their_hints(run, python):
    """step1 checked as step 3: the consumer fails in-process, so no server and no
    browser are started; their expectations are listed, with their hints."""
    result = run(python, "-m", "workshop.check", "3", "--project", str(step_folder(1)),
                 timeout=600)
    assert result.returncode == 1
    assert "no    message reaches the room and only the room" in result.stdout
    assert "group_add the room group" in result.stdout
    assert ("The step served by a real daphne process, with real WebSocket clients "
            "(not tried yet: first meet the expectations above)") in result.stdout
    assert "--    message reaches everyone in the room and no one else" in result.stdout
    assert "Does the consumer join a group on connect (group_add)" in result.stdout
    assert "make diff FROM=step01_sync_consumer TO=3" in result.stdout
    assert "skip" not in result.stdout  # nothing was started, so nothing was missing


def test_a_consumer_that_raises_on_bad_input_gets_the_matching_hint(run, python, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(step_folder(1), broken)
    consumers = broken / "chat" / "consumers.py"
    # The classic shortcut: parse the frame and hope for the best.
    consumers.write_text(consumers.read_text().replace(
        "            message = parse_message(text_data, bytes_data)\n"
        "        except InvalidMessage as error:",
        "            message = json.loads(text_data)['message']\n"
        "        except KeyError as error:",
    ))
    result = run(python, "-m", "workshop.check", "1", "--project", str(broken), timeout=600)
    assert result.returncode == 1
    assert "no    bad frame gets an error and the connection stays usable" in result.stdout
    assert "on InvalidMessage, send {\"error\": str(error)}" in result.stdout
    assert "yes   sender receives its own message" in result.stdout


def test_check_without_a_step_finds_yours(monkeypatch, capsys):
    """find_your_step's branches, each step's checks replaced by a verdict: the last
    step is tried first, and each one before it until one passes. (That the last
    reference step passes make check with no step, every layer run, is .ci/run's
    part, on the newest Python; a real loop over failing steps is the next test's.)"""
    from workshop import check
    from workshop.steps import STEPS

    def result(outcome):
        return {"test": f"test_{outcome}_one", "heading": "The layer", "hint": "Look here.",
                "limit": False, "outcome": outcome, "why": "because", "cause": None}

    def finds(highest_passing, *options):
        tried = []

        def run_checks(step, project, verbose=False):
            tried.append(step)
            return [result("passed" if step <= highest_passing else "failed")]

        monkeypatch.setattr(check, "run_checks", run_checks)
        code = check.main(["--project", str(step_folder(LAST_STEP)), *options])
        return code, tried, capsys.readouterr().out

    code, tried, out = finds(LAST_STEP, "--total")
    assert (code, tried) == (0, [LAST_STEP])
    assert f"All {LAST_STEP} steps pass. Well done!" in out
    assert "  no  " not in out
    assert out.endswith("\ntotal: 1 passed, 0 failed, 0 skipped\n")  # .ci/run's summary

    code, tried, out = finds(2, "--total")
    assert (code, tried) == (0, [step for step in reversed(STEPS) if step >= 2])
    assert "Step 3, checked on" in out and "no    failed one" in out  # the next step's misses
    assert "You have finished step 2. Next: step 3" in out
    assert out.endswith("\ntotal: 0 passed, 1 failed, 0 skipped\n")  # not all steps pass

    code, tried, out = finds(0)
    assert (code, tried) == (0, list(reversed(STEPS)))
    assert "Step 1, checked on" in out and "Start with step 1" in out


def test_make_check_without_a_step_says_what_is_next_without_make_errors(make, tmp_path):
    mywork = tmp_path / "mywork"
    shutil.copytree(step_folder(2), mywork)
    result = make("check", f"MYWORK_DIR={mywork}", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "You have finished step 2. Next: step 3" in result.stdout
    assert "make: ***" not in result.stdout + result.stderr


def test_check_without_a_project_says_to_start(run, python, mywork_env):
    result = run(python, "-m", "workshop.check", "2", env=mywork_env)
    assert result.returncode == 2
    assert "make start" in result.stderr


@pytest.mark.parametrize("step, name, path", [
    (1, "consumers", "chat/consumers.py"),
    (1, "routing", "chat/routing.py"),
    (1, "asgi", "mysite/asgi.py"),
    (2, "consumers", "chat/consumers.py"),
])
def test_the_code_a_readme_gives_to_type_is_the_steps_own_file(step, name, path):
    """Steps 1 and 2 show their lesson's code in the README: it cannot drift."""
    from workshop.steps import readme_code

    assert readme_code(step, name) == (step_folder(step) / path).read_text()
