"""Which language a visitor reads: their switch (remembered), else their browser, else French."""

from flask import Flask, request, session
from flask_babel import get_locale

from .formatting import locale_for, register_filters


def current_language() -> str:
    return get_locale().language


def select_locale() -> str:
    from flask import current_app

    languages = current_app.config["LANGUAGES"]
    chosen = session.get("language")
    if chosen not in languages:
        chosen = request.accept_languages.best_match(languages) or languages[0]
    return locale_for(chosen)


def init_app(app: Flask) -> None:
    register_filters(app)
    app.jinja_env.globals["current_language"] = current_language
