"""`flask dev`, the development server of `make run`, with its mail job and SMTP sink."""

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port
from werkzeug.serving import make_server

from webapp import cli, config, create_app
from webapp.config import TestingConfig

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


def test_commands_run_beside_the_dev_server_mail_links_to_where_it_serves(
    tmp_path, monkeypatch, sqlite_template
):
    monkeypatch.setattr(config, "INSTANCE", tmp_path)
    database = tmp_path / "atelier.sqlite"
    shutil.copy(sqlite_template, database)
    settings = {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}", "PUBLIC_URL": None}
    sink = {"MAIL_SINK_DIR": str(tmp_path / "mails"), "MAIL_PORT": free_port()}
    app = create_app(TestingConfig, {**settings, **sink})
    servers = []

    def make_server_and_keep_it(*args, **kwargs):
        servers.append(make_server(*args, **kwargs))
        return servers[-1]

    monkeypatch.setattr(cli, "make_server", make_server_and_keep_it)
    port = free_port()
    results = []
    dev = threading.Thread(
        target=lambda: results.append(app.test_cli_runner().invoke(args=["dev", "--port", port]))
    )
    dev.start()
    try:
        deadline = time.monotonic() + 20
        while not servers and dev.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert servers, results and results[0].output
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            assert response.status == 200

        # A command in another terminal: a new app, without PUBLIC_URL either.
        command = create_app(TestingConfig, settings)
        assert command.config["PUBLIC_URL"] == app.config["PUBLIC_URL"]
        assert command.config["PUBLIC_URL"] == f"http://127.0.0.1:{port}"
    finally:
        if servers:
            servers[0].shutdown()
        dev.join(timeout=20)
    assert not dev.is_alive()
