from flask import (
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import force_locale, gettext, lazy_gettext
from flask_wtf.csrf import CSRFError, generate_csrf
from jinja2_fragments.flask import render_block
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .. import audit
from .. import registration as registrations
from ..errors import error_page
from ..events import current_event
from ..extensions import db, limiter
from ..formatting import locale_for
from ..forms import CancellationForm, RegistrationForm
from ..i18n import chosen_language, current_language, select_locale
from ..links import local_target
from ..snapshots import Rendered, current_snapshot, snapshots
from . import public
from .seat_polls import answer, poll_key

# What a browser's form sends; no type at all is an empty form.
FORM_BODIES = {"", "application/x-www-form-urlencoded", "multipart/form-data"}


def _body_is_not_a_form() -> bool:
    """Flask-WTF reads a JSON body, or a file named like a field, as form data, and its checks
    fail on what is not text: the public forms take text fields only."""
    return request.method == "POST" and (request.mimetype not in FORM_BODIES or bool(request.files))


@public.before_request
def refuse_bodies_that_are_not_forms():
    if _body_is_not_a_form():
        abort(415)


# Stands in for the visitor's CSRF token in a programme page rendered once for everyone.
CSRF_TOKEN_SLOT = "csrf-token-of-this-visitor"


def _page_context(event, availability, window, form=None, chosen_workshop=None):
    if form is None and window is registrations.RegistrationWindow.OPEN:
        form = RegistrationForm(
            workshops=[a.workshop for a in availability],
            lunch_offered=event.lunch_offered,
            meta={"csrf": False},
        )
        form.workshop.data = chosen_workshop
    return {
        "event": event,
        "availability": availability,
        "window": window,
        "form": form,
        "poll_seconds": current_app.config["AVAILABILITY_POLL_SECONDS"],
        "last_seats_threshold": current_app.config["LAST_SEATS_THRESHOLD"],
    }


@public.get("/")
def programme():
    snapshot = current_snapshot()
    window = registrations.registration_window(snapshot.event)
    # "Choisir cet atelier" on a workshop's card comes with ?atelier=N.
    chosen = request.args.get("atelier", type=int)
    if chosen not in {a.workshop.number for a in snapshot.availability}:
        chosen = None

    def render(snapshot):
        context = _page_context(
            snapshot.event, snapshot.availability, window, chosen_workshop=chosen
        )
        return render_template(
            "programme.html",
            **context,
            csrf_token=lambda: CSRF_TOKEN_SLOT,
            here=url_for("public.programme", atelier=chosen),
        )

    # The locale Flask-Babel would pick, without building it: a cached page needs no translation.
    page = snapshots().rendered(("programme", select_locale(), window, chosen), render)
    body = page.body.replace(CSRF_TOKEN_SLOT.encode(), generate_csrf().encode())
    response = current_app.response_class(body)
    response.vary.update(["Cookie", "Accept-Language"])
    return response


def _seat_updates(snapshot, part: str | None) -> str:
    """The seat statuses as out-of-band swaps: the cards', or with part "choices" the form's."""
    return render_block(
        "programme.html",
        "seat_updates",
        availability=snapshot.availability,
        last_seats_threshold=current_app.config["LAST_SEATS_THRESHOLD"],
        part=part,
    )


def _seat_poll(part: str | None, language: str) -> Rendered | None:
    def render(snapshot):
        with force_locale(locale_for(language)):
            return _seat_updates(snapshot, part)

    return snapshots().rendered(poll_key(part, language), render)


@public.get("/places")
def availability():
    """The seat counts, polled by every open programme page: on the workshop cards, or with
    `?part=choices` beside the form's choices; `lang` is the page's language, so that the answer
    depends on its URL alone. Rendered once per change; see seat_polls for the answers that do
    not even reach Flask."""
    language = request.args.get("lang")
    if language not in current_app.config["LANGUAGES"]:
        language = current_language()
    updates = _seat_poll(request.args.get("part"), language)
    if updates is None:
        abort(404)
    status, headers, body = answer(updates, request.headers.get("If-None-Match"))
    response = current_app.response_class(body, status, headers)
    if request.args.get("lang") != language:
        response.vary.update(["Cookie", "Accept-Language"])
    return response


def _render_registration_errors(event, form, status=422):
    availability = registrations.workshop_availability(db.session, event)
    context = _page_context(event, availability, registrations.registration_window(event), form)
    if request.htmx:
        response = current_app.make_response(
            (render_block("programme.html", "registration", **context), status)
        )
    else:
        response = current_app.make_response((render_template("programme.html", **context), status))
    response.vary.add("HX-Request")
    return response


def _registration_rate_limit():
    return current_app.config["REGISTRATION_RATE_LIMIT"]


@public.post("/inscription")
@limiter.limit(_registration_rate_limit)
def register():
    event = current_event()
    # The workshops alone, not their seats: the registration takes a seat or finds none.
    form = RegistrationForm(workshops=event.workshops, lunch_offered=event.lunch_offered)
    if registrations.registration_window(event) is not registrations.RegistrationWindow.OPEN:
        return _render_registration_errors(event, None, status=409)
    if not form.validate_on_submit():
        return _render_registration_errors(event, form)
    applicant = registrations.Applicant(
        first_name=form.first_name.data,
        last_name=form.last_name.data,
        email=form.email.data,
        organisation=form.organisation.data or None,
        workshop_number=form.workshop.data,
        lunch=bool(event.lunch_offered and form.lunch.data == "yes"),
        dietary=form.dietary.data or None,
        language=current_language(),
    )
    try:
        result = registrations.register(db.session, event, applicant)
        # Read before the commit expires the registration (reading it after is a query).
        last_registration = {
            "outcome": result.outcome.value,
            "email": result.email,
            "registration_id": result.registration.id if result.registration else None,
        }
        db.session.commit()
    except registrations.RegistrationClosedError:
        return _render_registration_errors(event, None, status=409)
    except registrations.UnknownWorkshopError:
        form.workshop.errors = [gettext("Choisissez un atelier.")]
        return _render_registration_errors(event, form)

    session["last_registration"] = last_registration
    if not request.htmx:
        return redirect(url_for("public.confirmation"), code=303)
    panel = render_block("confirmation.html", "panel", **_confirmation_context(event, result))
    # The cards as this registration left them, in the same answer: the next poll may reach a
    # server that has not re-read the seats yet.
    cards = _seat_poll("cards", current_language())
    response = current_app.make_response(panel.encode() + (cards.body if cards else b""))
    response.vary.add("HX-Request")
    return response


def _confirmation_context(event, result: registrations.RegistrationResult):
    return {"event": event, "result": result, "Outcome": registrations.Outcome}


@public.get("/inscription/confirmation")
def confirmation():
    event = current_event()
    last = session.get("last_registration")
    if not last:
        return redirect(url_for("public.programme"), code=303)
    registration = (
        db.session.get(registrations.Registration, last["registration_id"])
        if last.get("registration_id")
        else None
    )
    outcome = registrations.Outcome(last["outcome"])
    if registration is None:
        # Gone since (deleted by the organisers): say only that the e-mail tells the rest.
        outcome = registrations.Outcome.ALREADY_REGISTERED
    result = registrations.RegistrationResult(
        outcome=outcome,
        email=last["email"],
        registration=registration,
        waitlist_position=(
            registrations.waitlist_position(db.session, registration) if registration else None
        ),
    )
    return render_template("confirmation.html", **_confirmation_context(event, result))


@public.get("/inscription/<token>")
def manage(token: str):
    registration = registrations.find_by_token(db.session, token)
    if registration is None:
        return _unknown_registration_link()
    return _render_manage_page(registration)


def _unknown_registration_link():
    return error_page(
        404,
        gettext(
            "Ce lien vers une inscription n'est pas valable. Vérifiez qu'il est complet "
            "(copiez-le entièrement depuis l'e-mail)."
        ),
    )


def _in_participant_language(registration):
    """Opened from the e-mail, the participant's page speaks the language they registered in,
    unless they picked one with the switch."""
    return force_locale(locale_for(chosen_language() or registration.language))


def _render_manage_page(registration, cancellation_form=None, status=200):
    with _in_participant_language(registration):
        if cancellation_form is None and registrations.can_cancel(registration):
            cancellation_form = CancellationForm()
        event = registration.event
        page = render_template(
            "manage.html",
            event=event,
            registration=registration,
            waitlist_position=registrations.waitlist_position(db.session, registration),
            cancellation_form=cancellation_form,
            registration_open=registrations.registration_window(event)
            is registrations.RegistrationWindow.OPEN,
        )
    return page, status


@public.post("/inscription/<token>/annulation")
def cancel(token: str):
    """The participant frees their seat (or leaves the waiting list) from their own page."""
    registration = registrations.find_by_token(db.session, token)
    if registration is None:
        return _unknown_registration_link()
    if not registrations.can_cancel(registration):
        return redirect(url_for("public.manage", token=token), code=303)
    with _in_participant_language(registration):
        form = CancellationForm()
        if not form.validate_on_submit():
            return _render_manage_page(registration, form, status=422)
    try:
        registrations.cancel_registration(db.session, registration, audit.PARTICIPANT)
        db.session.commit()
    except registrations.NothingToCancelError:
        db.session.rollback()  # cancelled a moment ago (a second tap): the page says it is
    return redirect(url_for("public.manage", token=token), code=303)


@public.get("/confidentialite")
def privacy():
    return render_template(
        "privacy.html",
        event=current_event(),
        retention_days=current_app.config["RETENTION_DAYS_AFTER_EVENT"],
    )


@public.get("/langue/<language>")
def choose_language(language: str):
    if language in current_app.config["LANGUAGES"]:
        session["language"] = language
    return redirect(local_target(request.args.get("next", "")), code=303)


@public.get("/healthz")
def health():
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        current_app.logger.exception("health check: the database does not answer")
        return {"status": "database unavailable"}, 503
    # The site still works without the limiter's Redis (each process counts on its own): the
    # load balancer keeps it (200), monitoring sees "degraded".
    rate_limit = limiter.storage_state(current_app)
    return {"status": "degraded" if rate_limit == "unreachable" else "ok", "rate_limit": rate_limit}


def _refuse_registration(message: str, status: int):
    """Gives the form back, filled in as it was sent, with a message above it."""
    event = current_event()
    form = RegistrationForm(workshops=event.workshops, lunch_offered=event.lunch_offered)
    form.form_errors.append(message)
    return _render_registration_errors(event, form, status=status)


SESSION_EXPIRED = lazy_gettext(
    "Votre session a expiré. Vérifiez le formulaire et envoyez-le à nouveau."
)


@public.errorhandler(CSRFError)
def csrf_failed(_error):
    if _body_is_not_a_form():
        return error_page(415)
    if request.endpoint == "public.register":
        return _refuse_registration(str(SESSION_EXPIRED), 422)
    if request.endpoint == "public.cancel":
        registration = registrations.find_by_token(db.session, request.view_args["token"])
        if registration is not None:
            # The page again, with a fresh token, in the participant's language.
            form = CancellationForm(formdata=None)
            form.confirm.errors = [SESSION_EXPIRED]
            return _render_manage_page(registration, form, status=400)
    return error_page(400, str(SESSION_EXPIRED))


@public.errorhandler(429)
def too_many_requests(_error):
    message = gettext("Trop de tentatives en peu de temps. Patientez une minute et réessayez.")
    if request.endpoint == "public.register":
        return _refuse_registration(message, 429)
    return error_page(429, message)
