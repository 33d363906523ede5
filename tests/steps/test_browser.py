"""The chat in a real browser (headless Chromium driven by Selenium), as people use it."""
import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.support import TESTER
from workshop.steps import CHANNEL_LAYER, HISTORY, PRODUCTION, RESILIENCE, USERS, since

pytestmark = pytest.mark.layer(
    4, "The chat in a real browser (headless Chromium driven by Selenium)"
)

# A message that would run script if the page ever inserted it as HTML.
HOSTILE = '<img src=x onerror="window.pwned=1"><script>window.pwned=1</script>'


@pytest.fixture
def open_room(browser, server):
    """Open a room in a window of its own (on `server`, or on the server given);
    the windows close after the test."""
    first_window = browser.current_window_handle
    opened = []

    def open_room(room, on=server):
        browser.switch_to.new_window("window")
        browser.get(f"{on.url}/chat/{room}/")
        wait_for(browser, lambda: browser.execute_script("return chatSocket.readyState") == 1)
        opened.append(browser.current_window_handle)
        return browser.current_window_handle

    yield open_room
    for window in opened:
        browser.switch_to.window(window)
        browser.close()
    browser.switch_to.window(first_window)


def wait_for(browser, condition, timeout=10):
    WebDriverWait(browser, timeout).until(lambda _: condition())


def send(browser, window, text):
    browser.switch_to.window(window)
    browser.find_element(By.ID, "chat-message-input").send_keys(text, Keys.ENTER)


def chat_log(browser, window):
    browser.switch_to.window(window)
    return browser.find_element(By.ID, "chat-log").get_property("value")


def line(step, text):
    """A message's line in the chat log: from the users step on, after its author's name
    (the tests' user: tests/steps/conftest.py)."""
    return f"{TESTER}: {text}\n" if step >= USERS else f"{text}\n"


def wait_for_log(browser, window, text):
    wait_for(browser, lambda: text in chat_log(browser, window))


@pytest.mark.hint(
    "Check the ids in chat/templates/chat/index.html (room-name-input, room-name-"
    "submit) and its script."
)
def test_typing_a_room_name_and_enter_opens_the_room(browser, server):
    browser.get(f"{server.url}/chat/")
    browser.find_element(By.ID, "room-name-input").send_keys("lobby", Keys.ENTER)
    wait_for(browser, lambda: browser.current_url == f"{server.url}/chat/lobby/")
    assert browser.find_element(By.ID, "chat-log").is_displayed()


@pytest.mark.hint('Before step 3 the consumer only echoes to its own socket.')
@pytest.mark.steps(1, 2)
def test_sender_sees_its_message_and_the_other_window_does_not(browser, open_room):
    alice, bob = open_room("lobby"), open_room("lobby")
    send(browser, alice, "hello from alice")
    wait_for_log(browser, alice, "hello from alice")
    # Bob's own message arrives; Alice's never does (steps 1 and 2 only echo).
    send(browser, bob, "bob here")
    wait_for_log(browser, bob, "bob here")
    assert chat_log(browser, bob) == "bob here\n"


@pytest.mark.hint(
    "Does the consumer join a group on connect (group_add) and send to that group "
    "(group_send)?"
)
@pytest.mark.steps(*since(CHANNEL_LAYER))
def test_both_windows_in_the_room_see_the_message_and_another_room_does_not(
    browser, open_room, step
):
    alice, bob, carol = open_room("lobby"), open_room("lobby"), open_room("kitchen")
    send(browser, alice, "hello room")
    wait_for_log(browser, alice, "hello room")
    wait_for_log(browser, bob, "hello room")
    send(browser, carol, "carol here")
    wait_for_log(browser, carol, "carol here")
    assert chat_log(browser, carol) == line(step, "carol here")


@pytest.mark.hint(
    "Messages reach the windows in the room as literal text: room.html adds them with "
    "chatLog.value += ..., never innerHTML."
)
def test_html_in_a_message_is_shown_as_text_and_never_runs(browser, open_room, step):
    alice = open_room("lobby")
    bob = open_room("lobby") if step >= CHANNEL_LAYER else None
    send(browser, alice, HOSTILE)
    for window in filter(None, (alice, bob)):
        wait_for_log(browser, window, HOSTILE)
        assert browser.execute_script("return window.pwned") is None


@pytest.mark.hint(
    'room.html shows {"error": ...} replies as "[error] ..." lines; the consumer must'
    ' send them.'
)
def test_bad_input_shows_an_error_line_and_the_chat_goes_on(browser, open_room):
    alice = open_room("lobby")
    send(browser, alice, "   ")  # blank messages are refused by the server
    wait_for_log(browser, alice, "[error]")
    send(browser, alice, "still chatting")
    wait_for_log(browser, alice, "still chatting")


@pytest.mark.limit
@pytest.mark.hint("Step 6's page reconnects by itself; step 5's asks for a reload.")
@pytest.mark.steps(PRODUCTION)
def test_after_a_server_restart_the_page_stays_disconnected(browser, open_room, start_server):
    """The limit that step 6 lifts: a restart (a deploy, a killed worker) ends
    every chat for good, until each window is reloaded."""
    server = start_server()
    alice = open_room("restart", on=server)
    server.stop()
    wait_for_log(browser, alice, "[disconnected: reload the page to reconnect]")
    server.start()
    with pytest.raises(TimeoutException):  # the server is back; the page does not know
        wait_for(browser, lambda: browser.execute_script("return chatSocket.readyState") == 1,
                 timeout=5)


@pytest.mark.hint(
    "room.html opens a new WebSocket in onclose, after a delay that doubles up to 30 s,"
    " and writes [reconnected] when it is back."
)
@pytest.mark.steps(RESILIENCE)
def test_the_page_reconnects_by_itself_after_a_server_restart(browser, open_room, start_server):
    server = start_server()
    alice, bob = open_room("restart", on=server), open_room("restart", on=server)
    server.stop()
    wait_for_log(browser, alice, "[disconnected")
    send(browser, alice, "typed while the server was down")
    wait_for_log(browser, alice, "[not sent: disconnected]")
    server.start()
    for window in (alice, bob):
        wait_for(browser, lambda: "[reconnected]" in chat_log(browser, window), timeout=40)
    send(browser, bob, "after the restart")
    wait_for_log(browser, alice, "after the restart")


@pytest.mark.hint(
    "The consumer sends the room's last messages on connect, and room.html shows them"
    " like any other."
)
@pytest.mark.steps(*since(HISTORY))
def test_a_window_that_reloads_shows_the_history(browser, open_room, step):
    alice = open_room("memory")
    send(browser, alice, "remember me")
    wait_for_log(browser, alice, "remember me")
    browser.refresh()
    wait_for(browser, lambda: browser.execute_script("return chatSocket.readyState") == 1)
    wait_for_log(browser, alice, "remember me")
    assert chat_log(browser, alice) == line(step, "remember me")


@pytest.mark.hint(
    "room.html reconnects with ?since=<lastId>, keeps what was typed meanwhile in "
    "pending, and sends it again on reconnecting."
)
@pytest.mark.steps(*since(HISTORY))
def test_a_window_whose_server_restarts_catches_up_with_what_was_said_meanwhile(
    browser, open_room, start_server
):
    # Two servers sharing Redis and the database; alice's goes down for a while.
    hers, his = start_server(), start_server()
    alice, bob = open_room("restart", on=hers), open_room("restart", on=his)
    hers.stop()
    wait_for_log(browser, alice, "[disconnected")
    send(browser, bob, "said while you were away")
    wait_for_log(browser, bob, "said while you were away")
    send(browser, alice, "typed while my server was down")
    wait_for_log(browser, alice, "[disconnected: will send it on reconnecting]")
    hers.start()
    for window in (alice, bob):
        wait_for(browser, lambda: "typed while my server was down" in chat_log(browser, window),
                 timeout=40)
    log = chat_log(browser, alice)
    assert log.count("said while you were away") == 1
    assert log.index("said while you were away") < log.index("typed while my server was down")
    assert chat_log(browser, bob).count("typed while my server was down") == 1


@pytest.mark.hint(
    "The pages put the cursor in their input as they load (autofocus, and .focus() in"
    " their script): the first key typed must land there."
)
def test_typing_at_once_after_each_page_loads_reaches_its_input(browser, server):
    """As the official tutorial's part-4 test does: keys go to whatever has
    the focus, with no click in the input first."""
    first_window = browser.current_window_handle
    browser.switch_to.new_window("window")
    try:
        browser.get(f"{server.url}/chat/")
        ActionChains(browser).send_keys("typed_at_once", Keys.ENTER).perform()
        wait_for(browser, lambda: browser.current_url == f"{server.url}/chat/typed_at_once/")
        wait_for(browser, lambda: browser.execute_script("return chatSocket.readyState") == 1)
        ActionChains(browser).send_keys("first words", Keys.ENTER).perform()
        wait_for_log(browser, browser.current_window_handle, "first words")
    finally:
        browser.close()
        browser.switch_to.window(first_window)
