"""`flask dev`, the development server of `make run`, with its mail job and SMTP sink."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("busy", ["site", "mail sink"])
def test_a_busy_port_stops_the_dev_server_with_one_line_naming_it(tmp_path, busy):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy_port = taken.getsockname()[1]
        port, mail_port = (busy_port, free_port()) if busy == "site" else (free_port(), busy_port)
        result = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", "dev", "--port", str(port)],
            cwd=ROOT,
            env={
                **os.environ,
                "ATELIER_ENV": "development",
                "SECRET_KEY": "dev-server-test",
                "DATABASE_URL": f"sqlite:///{tmp_path}/atelier.sqlite",
                "MAIL_SINK_DIR": str(tmp_path / "mails"),
                "MAIL_PORT": str(mail_port),
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert f"cannot listen on 127.0.0.1:{busy_port} (Address already in use)" in line
    assert ("make run MAIL_PORT=" if busy == "mail sink" else "make run PORT=") in line
