"""make check on a consumer mid-exercise: one answer that never comes is one cause.

The broken states are the benchmark's (bench/check_speed.py measures how long
each takes); here, what the attendee is told. No timing is asserted.
"""
import asyncio
from types import SimpleNamespace

import pytest

from bench.check_speed import make_case
from tests import plugin
from tests.support import ConsumerWaits


def check(run, python, step, folder):
    return run(python, "-m", "workshop.check", str(step), "--project", str(folder), timeout=300)


@pytest.mark.parametrize("case", ["receive() silent", "accept() missing"])
def test_a_consumer_that_does_not_answer_is_one_cause_with_the_rest_under_it(
    run, python, tmp_path, case
):
    result = check(run, python, 1, make_case(case, 1, tmp_path / "mywork"))
    assert result.returncode == 1
    out = result.stdout
    assert "no    sender receives its own message" in out
    assert "why:  the consumer sent no answer within 2 s" in out
    # The others that waited in vain are listed under it, without hints of their own.
    assert "more failed the same way (no answer within 0.5 s either)" in out
    assert "            no  unicode and html arrive unchanged" in out
    assert "hint: Send the message back exactly as parse_message() returned it." not in out
    # What needs no answer from ChatConsumer is still graded.
    assert "yes   unknown paths are refused" in out
    assert "(not tried yet: first meet the expectations above)" in out


def test_an_async_consumer_that_blocks_the_event_loop_is_told_so(run, python, tmp_path):
    folder = make_case("receive() calls time.sleep(10)", 2, tmp_path / "mywork")
    result = check(run, python, 2, folder)
    assert result.returncode == 1
    assert "why:  the event loop did not run for 2 s" in result.stdout
    assert "time.sleep() in async def" in result.stdout
    assert ("not tried yet: first make 'sender receives its own message' work: the consumer "
            "blocked the event loop there") in result.stdout


def test_a_missing_await_is_the_reason_given(run, python, tmp_path):
    folder = make_case("reference (passes)", 2, tmp_path / "mywork")
    consumers = folder / "chat" / "consumers.py"
    echo = '        await self.send(text_data=json.dumps({"message": message}))'
    assert echo in consumers.read_text()
    consumers.write_text(consumers.read_text().replace(echo, echo.replace("await ", "")))
    result = check(run, python, 2, folder)
    assert result.returncode == 1
    assert ("why:  RuntimeWarning: coroutine 'AsyncWebsocketConsumer.send' was never awaited:"
            " a missing await (consumers.py, line") in result.stdout


def test_a_project_that_cannot_load_gets_its_error_not_pytests_internals(run, python, tmp_path):
    folder = make_case("reference (passes)", 1, tmp_path / "mywork")
    settings = folder / "mysite" / "settings.py"
    settings.write_text(
        settings.read_text() + '\nimport os\nSECRET_KEY = os.environ["NOT_SET_ANYWHERE"]\n')
    result = check(run, python, 1, folder)
    assert result.returncode == 1
    assert "KeyError: 'NOT_SET_ANYWHERE'" in result.stdout
    assert f'File "{settings}", line' in result.stdout
    assert "Your project could not be loaded, so no expectation was tried" in result.stdout
    assert "0 of 0" not in result.stdout
    assert "_pytest" not in result.stdout + result.stderr


def test_a_later_steps_redis_settings_are_named_first(run, python, tmp_path):
    folder = make_case("reference (passes)", 4, tmp_path / "mywork")
    settings = folder / "mysite" / "settings.py"
    settings.write_text(settings.read_text().replace(
        'os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")', '"redis://127.0.0.1:6379/0"'))
    result = check(run, python, 2, folder)
    assert result.returncode == 1
    assert "note: This folder looks like step 4 or later" in result.stdout
    assert "note: Your CHANNEL_LAYERS name a fixed Redis address" in result.stdout


async def timed_out(seconds):
    """The TimeoutError of an asyncio.wait_for() of `seconds` that nothing answers."""
    try:
        await asyncio.wait_for(asyncio.Event().wait(), seconds)
    except asyncio.TimeoutError as error:  # TimeoutError itself from Python 3.11
        return error
    raise AssertionError("the wait did not time out")


async def test_each_timeout_is_reported_with_the_length_it_had(monkeypatch):
    """A real server's wait (a socket's) is told with its own length, not with
    the last in-process wait of an earlier test (ConsumerWaits)."""
    waits = ConsumerWaits()
    waits.checking = True
    monkeypatch.setattr(plugin, "CONSUMER_WAITS", waits)

    def why(name, error):
        item = SimpleNamespace(originalname=name)
        return plugin.why_it_failed(item, SimpleNamespace(excinfo=SimpleNamespace(value=error)),
                                    None)

    waits.last_timeout = 5  # an in-process test waited 5 s, and was answered
    waits.start_test()  # then a server test waits 0.2 s on its socket
    assert why("test_burst", await timed_out(0.2)) == (
        "the consumer sent no answer within 0.2 s", None)
    waits.start_test()  # an in-process test: its ConsumerWaits length, not asgiref's inner one
    waits.last_timeout = 0.5
    assert why("test_echo", await timed_out(0.01)) == (
        "no answer within 0.5 s either", "test_burst")
    waits.start_test()  # a timeout that no wait_for() gave: no figure
    assert why("test_other", TimeoutError()) == ("no answer in time either", "test_burst")
