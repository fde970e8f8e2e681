"""Error pages: a clear message in the visitor's language, never a bare stack trace."""

from flask import Flask, render_template
from flask_babel import gettext
from psycopg.errors import DeadlockDetected
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from werkzeug.exceptions import HTTPException

from .events import find_current_event
from .extensions import db

HEADINGS = {
    404: lambda: gettext("Page introuvable"),
    429: lambda: gettext("Trop de tentatives"),
}
MESSAGES = {
    400: lambda: gettext("La demande n'a pas pu être comprise. Rechargez la page et réessayez."),
    404: lambda: gettext("Cette page n'existe pas."),
    405: lambda: gettext("Cette action n'est pas possible sur cette page."),
    413: lambda: gettext("Les données envoyées sont trop volumineuses."),
    415: lambda: gettext("Cette page n'accepte que les formulaires du site, sans fichier joint."),
    429: lambda: gettext("Trop de tentatives en peu de temps. Patientez une minute et réessayez."),
}


def error_page(status: int, message: str | None = None):
    message = message or MESSAGES.get(status, lambda: gettext("Une erreur est survenue."))()
    heading = HEADINGS.get(status, lambda: gettext("Désolé·e, cela n'a pas marché"))()
    try:
        # The event's header, footer and contact, where there is an event to show.
        event = find_current_event()
    except SQLAlchemyError:
        event = None
    return render_template(
        "error.html", status=status, heading=heading, message=message, event=event
    ), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if error.code is None or error.code < 400:
            return error
        return error_page(error.code)

    @app.errorhandler(500)
    def server_error(_error):
        # Whatever the failed request had changed must not be committed by a later one.
        db.session.rollback()
        return error_page(
            500, gettext("Une erreur est survenue de notre côté. Réessayez plus tard.")
        )

    @app.errorhandler(OperationalError)
    def database_error(error: OperationalError):
        if not isinstance(error.orig, DeadlockDetected):
            app.logger.error("database error", exc_info=error)
            return server_error(error)
        # Two changes locked the same rows in opposite orders and PostgreSQL undid this one:
        # nothing was written, the person tries again.
        db.session.rollback()
        return error_page(
            409, gettext("Une autre modification a eu lieu au même moment. Réessayez.")
        )
