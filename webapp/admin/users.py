"""Accounts: admins create, disable and enable organisers' and admins' accounts, and change
their own password."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length

from .. import accounts, audit
from ..events import find_current_event
from ..extensions import db
from ..forms import (
    SINGLE_LINE_FORBIDDEN,
    _strip,
    one_of_the_choices,
    without_control_characters,
)
from ..models import Role, User
from . import admin, admin_only

ROLE_LABELS = {Role.ORGANISER: _l("Organisateur·rice"), Role.ADMIN: _l("Admin")}
CHOOSE_A_ROLE = _l("Choisissez un rôle.")
PASSWORDS_DIFFER = _l("Les deux mots de passe ne sont pas identiques.")


class NewAccountForm(FlaskForm):
    # Only the account rules (accounts.create_user): an address on an internal domain is fine.
    email = StringField(
        _l("Adresse e-mail"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Indiquez l'adresse e-mail.")),
            Length(max=254, message=_l("254 caractères au maximum.")),
            without_control_characters(SINGLE_LINE_FORBIDDEN),
        ],
    )
    role = RadioField(
        _l("Rôle"),
        choices=[SelectChoice(role.value, label) for role, label in ROLE_LABELS.items()],
        validators=[InputRequired(CHOOSE_A_ROLE), one_of_the_choices(CHOOSE_A_ROLE)],
        validate_choice=False,
    )
    password = PasswordField(
        _l("Mot de passe"),
        validators=[
            DataRequired(_l("Choisissez un mot de passe.")),
            Length(max=200, message=_l("200 caractères au maximum.")),
        ],
    )
    password_again = PasswordField(
        _l("Le même mot de passe, une seconde fois"),
        validators=[
            DataRequired(_l("Tapez le mot de passe une seconde fois.")),
            EqualTo("password", message=PASSWORDS_DIFFER),
        ],
    )


class DisableForm(FlaskForm):
    confirm = BooleanField(
        validators=[DataRequired(_l("Cochez la case pour confirmer la désactivation."))]
    )


class PasswordChangeForm(FlaskForm):
    current_password = PasswordField(
        _l("Mot de passe actuel"),
        validators=[
            DataRequired(_l("Indiquez votre mot de passe actuel.")),
            Length(max=200, message=_l("200 caractères au maximum.")),
        ],
    )
    new_password = PasswordField(
        _l("Nouveau mot de passe"),
        validators=[
            DataRequired(_l("Choisissez un nouveau mot de passe.")),
            Length(max=200, message=_l("200 caractères au maximum.")),
        ],
    )
    new_password_again = PasswordField(
        _l("Le nouveau mot de passe, une seconde fois"),
        validators=[
            DataRequired(_l("Tapez le nouveau mot de passe une seconde fois.")),
            EqualTo("new_password", message=PASSWORDS_DIFFER),
        ],
    )


def _password_too_short() -> str:
    return gettext(
        "Le mot de passe doit compter au moins %(count)s caractères.",
        count=accounts.MINIMUM_PASSWORD_LENGTH,
    )


def _posted(form_class: type[FlaskForm]) -> FlaskForm:
    # Only the posted form fields: Flask-WTF would otherwise read a JSON body as form data.
    return form_class(formdata=request.form)


def _render_users_page(
    new_account_form: NewAccountForm | None = None,
    password_form: PasswordChangeForm | None = None,
    refusals: dict[int, str] | None = None,
    status: int = 200,
):
    event = find_current_event()
    page = render_template(
        "admin/users.html",
        users=accounts.all_users(db.session),
        role_labels=ROLE_LABELS,
        zone=event.zone if event else ZoneInfo("UTC"),
        new_account_form=new_account_form or NewAccountForm(formdata=None),
        password_form=password_form or PasswordChangeForm(formdata=None),
        refusals=refusals or {},
        minimum_password_length=accounts.MINIMUM_PASSWORD_LENGTH,
    )
    return page, status


@admin.get("/comptes")
@admin_only
def users():
    return _render_users_page()


@admin.post("/comptes")
@admin_only
def users_create():
    form = _posted(NewAccountForm)
    if not form.validate_on_submit():
        return _render_users_page(new_account_form=form, status=422)
    try:
        user = accounts.create_user(
            db.session,
            audit.Actor.of(current_user),
            form.email.data,
            form.password.data,
            Role(form.role.data),
        )
    except accounts.PasswordTooShortError:
        form.password.errors.append(_password_too_short())
        return _render_users_page(new_account_form=form, status=422)
    except accounts.DuplicateEmailError:
        db.session.rollback()
        form.email.errors.append(gettext("Cette adresse a déjà un compte."))
        return _render_users_page(new_account_form=form, status=422)
    except accounts.InvalidEmailError:
        form.email.errors.append(gettext("Cette adresse e-mail n'est pas valide."))
        return _render_users_page(new_account_form=form, status=422)
    db.session.commit()
    flash(
        gettext(
            "Compte créé pour %(email)s (%(role)s).", email=user.email, role=ROLE_LABELS[user.role]
        ),
        "success",
    )
    return redirect(url_for("admin.users"), code=303)


@admin.post("/comptes/<id:user_id>/desactiver")
@admin_only
def users_disable(user_id: int):
    user = db.get_or_404(User, user_id)
    if not _posted(DisableForm).validate_on_submit():
        refusal = gettext("Cochez la case pour confirmer la désactivation.")
        return _render_users_page(refusals={user.id: refusal}, status=422)
    try:
        accounts.set_active(db.session, audit.Actor.of(current_user), user, False)
    except accounts.OwnAccountError:
        refusal = gettext("Vous ne pouvez pas désactiver votre propre compte.")
        return _render_users_page(refusals={user.id: refusal}, status=409)
    except accounts.LastAdminError:
        db.session.rollback()
        refusal = gettext(
            "C'est le dernier compte admin actif : activez ou créez d'abord un autre compte admin."
        )
        return _render_users_page(refusals={user.id: refusal}, status=409)
    db.session.commit()
    flash(
        gettext("Le compte %(email)s est désactivé : ses sessions sont fermées.", email=user.email),
        "success",
    )
    return redirect(url_for("admin.users"), code=303)


@admin.post("/comptes/<id:user_id>/activer")
@admin_only
def users_enable(user_id: int):
    user = db.get_or_404(User, user_id)
    accounts.set_active(db.session, audit.Actor.of(current_user), user, True)
    db.session.commit()
    flash(gettext("Le compte %(email)s est de nouveau actif.", email=user.email), "success")
    return redirect(url_for("admin.users"), code=303)


@admin.post("/comptes/mot-de-passe")
@admin_only
def users_password():
    form = _posted(PasswordChangeForm)
    if not form.validate_on_submit():
        return _render_users_page(password_form=form, status=422)
    user = current_user._get_current_object()
    try:
        accounts.change_password(
            db.session, user, form.current_password.data, form.new_password.data
        )
    except accounts.WrongPasswordError:
        form.current_password.errors.append(gettext("Ce n'est pas votre mot de passe actuel."))
        return _render_users_page(password_form=form, status=422)
    except accounts.PasswordTooShortError:
        form.new_password.errors.append(_password_too_short())
        return _render_users_page(password_form=form, status=422)
    db.session.commit()
    # The new nonce ended every session of this account; this one goes on with it.
    login_user(user)
    flash(gettext("Votre mot de passe est changé ; vos autres sessions sont fermées."), "success")
    return redirect(url_for("admin.users"), code=303)
