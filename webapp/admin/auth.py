"""Logging in and out of the dashboard."""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, Length

from .. import audit
from ..accounts import authenticate
from ..extensions import db, limiter
from ..forms import SINGLE_LINE_FORBIDDEN, without_control_characters
from ..links import local_target
from ..registration import normalise_email
from . import admin

LOGIN_FAILED = 401


class LoginForm(FlaskForm):
    email = EmailField(
        _l("Adresse e-mail"),
        validators=[
            DataRequired(_l("Indiquez votre adresse e-mail.")),
            Length(max=320),
            without_control_characters(SINGLE_LINE_FORBIDDEN),
        ],
    )
    password = PasswordField(
        _l("Mot de passe"),
        validators=[DataRequired(_l("Indiquez votre mot de passe.")), Length(max=200)],
    )


def _login_failed(response) -> bool:
    return response.status_code == LOGIN_FAILED


def _submitted_account() -> str:
    email = request.form.get("email", "")
    return "login-account:" + normalise_email(email if isinstance(email, str) else "")


def _login_rate_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@admin.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_rate_limit, methods=["POST"], deduct_when=_login_failed)
@limiter.limit(
    _login_rate_limit, methods=["POST"], key_func=_submitted_account, deduct_when=_login_failed
)
def login():
    # Only a form body: Flask-WTF would also read JSON, whose numbers break the validators.
    form = LoginForm(formdata=request.form if request.method == "POST" else None)
    next_page = local_target(request.args.get("next", ""), fallback=url_for("admin.overview"))
    if current_user.is_authenticated and request.method == "GET":
        return redirect(next_page, code=303)
    if not form.validate_on_submit():
        status = 422 if request.method == "POST" else 200
        return render_template("admin/login.html", form=form), status
    user = authenticate(db.session, form.email.data, form.password.data)
    if user is None:
        form.form_errors.append(_l("Adresse e-mail ou mot de passe incorrect."))
        return render_template("admin/login.html", form=form), LOGIN_FAILED
    # A new session: nothing from before the login (a planted session) carries over.
    session.clear()
    login_user(user)
    audit.record(db.session, audit.Actor.of(user), audit.AuditAction.USER_LOGIN, user.email)
    db.session.commit()
    return redirect(next_page, code=303)


@admin.post("/logout")
def logout():
    logout_user()
    session.clear()
    return redirect(url_for("admin.login"), code=303)
