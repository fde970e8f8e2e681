"""Development only: the mails that the local SMTP sink of `make run` received."""

from pathlib import Path

from flask import Blueprint, abort, current_app, render_template

dev = Blueprint("dev", __name__, url_prefix="/dev")


def _mails():
    from ..mail_sink import received_mails

    return received_mails(Path(current_app.config["MAIL_SINK_DIR"]))


@dev.get("/mails")
def mails():
    return render_template("dev_mails.html", mails=_mails(), shown=None)


@dev.get("/mails/<name>")
def mail(name: str):
    found = dict(_mails())
    if name not in found:
        abort(404)
    message = found[name]
    text = message.get_body(preferencelist=("plain",))
    return render_template(
        "dev_mails.html",
        mails=list(found.items()),
        shown=(name, message, text.get_content() if text else ""),
    )
