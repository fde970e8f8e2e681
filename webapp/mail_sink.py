"""A local SMTP server for development: keeps every mail it receives as a file."""

from __future__ import annotations

import email
import email.policy
import time
from pathlib import Path

from aiosmtpd.controller import Controller


class MailFolder:
    """Writes each message received to DIRECTORY/<time>-<n>.eml and prints one line."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.received = 0

    async def handle_DATA(self, _server, _session, envelope):
        self.received += 1
        path = self.directory / f"{time.time_ns()}-{self.received}.eml"
        path.write_bytes(envelope.original_content)
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        print(f"[mail sink] to {', '.join(envelope.rcpt_tos)}: {message['Subject']}", flush=True)
        return "250 Message accepted for delivery"


def start_mail_sink(directory: Path, port: int) -> Controller:
    controller = Controller(MailFolder(directory), hostname="127.0.0.1", port=port)
    controller.start()
    return controller


def received_mails(directory: Path) -> list[tuple[str, email.message.EmailMessage]]:
    paths = sorted(directory.glob("*.eml"), reverse=True) if directory.exists() else []
    return [
        (path.stem, email.message_from_bytes(path.read_bytes(), policy=email.policy.default))
        for path in paths
    ]
