"""Step 3 written the official tutorial's way, with a synchronous consumer.

The code is the block step03_channel_layer/README.md shows (and the slides
show), so the README cannot offer a version that `make check` refuses.
"""
import shutil

import pytest

from workshop.steps import readme_code, step_folder


@pytest.mark.timeout(900)
def test_the_readmes_synchronous_step3_meets_every_expectation(run, python, tmp_path):
    project = tmp_path / "sync_step3"
    shutil.copytree(step_folder(3), project,
                    ignore=shutil.ignore_patterns("__pycache__", "db.sqlite3"))
    consumers = project / "chat" / "consumers.py"
    consumers.write_text(readme_code(3, "sync-consumer"))
    assert "class ChatConsumer(WebsocketConsumer):" in consumers.read_text()

    result = run(python, "-m", "workshop.check", "3", "--project", str(project), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
