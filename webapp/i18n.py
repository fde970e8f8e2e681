"""Which language a visitor reads: their switch (remembered), else their browser, else French."""

import re

from flask import Flask, request, session
from flask_babel import get_locale, get_translations
from markupsafe import Markup, escape

from .formatting import locale_for, register_filters


def current_language() -> str:
    return get_locale().language


def _event_language_if_foreign(event) -> str | None:
    """The event's language when the visitor reads the page in another one."""
    if event.language.split("-")[0] == current_language():
        return None
    return event.language


def event_lang(event) -> Markup:
    """` lang="…"` for an element that holds only the event's own text, so that a screen reader
    reads French titles on an English page with a French voice."""
    language = _event_language_if_foreign(event)
    return Markup(' lang="%s"') % language if language else Markup("")


def in_event_language(event, text: str) -> Markup:
    """The event's own text inside an interface sentence, marked with its language if foreign."""
    language = _event_language_if_foreign(event)
    return Markup('<span lang="%s">%s</span>') % (language, text) if language else escape(text)


def chosen_language() -> str | None:
    """The language the visitor picked with the switch, if any."""
    from flask import current_app

    chosen = session.get("language")
    return chosen if chosen in current_app.config["LANGUAGES"] else None


def select_locale() -> str:
    from flask import current_app

    languages = current_app.config["LANGUAGES"]
    chosen = chosen_language() or request.accept_languages.best_match(languages) or languages[0]
    return locale_for(chosen)


# French sets a space before : ; ? ! and inside « »; a non-breaking one keeps the sign from
# starting a line on a narrow screen.
FRENCH_SPACE = re.compile(r" (?=[:;?!»])|(?<=«) ")


def _spaced(text: str) -> str:
    return FRENCH_SPACE.sub("\u00a0", text) if current_language() == "fr" else text


def init_app(app: Flask) -> None:
    register_filters(app)
    # Flask-Babel's own callables, with French spacing on the interface's sentences (not on the
    # values put into them: names, titles and form data stay as they were written).
    app.jinja_env.install_gettext_callables(
        gettext=lambda text: _spaced(get_translations().ugettext(text)),
        ngettext=lambda one, many, n: _spaced(get_translations().ungettext(one, many, n)),
        newstyle=True,
    )
    app.jinja_env.globals["current_language"] = current_language
    app.jinja_env.globals["event_lang"] = event_lang
    app.jinja_env.globals["in_event_language"] = in_event_language
