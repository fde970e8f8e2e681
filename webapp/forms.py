"""The registration form: every field's limits and French (or English) messages."""

import re

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    Optional,
    StopValidation,
    ValidationError,
)

# Names and single-line fields: no control character at all (line breaks would let someone forge
# e-mail headers or CSV rows), no Unicode line or paragraph separator, no bidirectional override
# (which can make a name display as something else). Free text may also hold line breaks and tabs.
# Joiners stay allowed: some scripts need them in names.
_CONTROLS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
SINGLE_LINE_FORBIDDEN = re.compile(f"[{_CONTROLS}\\t\\n\\r]")
MULTI_LINE_FORBIDDEN = re.compile(f"[{_CONTROLS}]")


def without_control_characters(pattern: re.Pattern):
    def check(_form, field):
        if field.data and pattern.search(field.data):
            raise ValidationError(_l("Ce champ contient des caractères non autorisés."))

    return check


def deliverable_syntax(_form, field):
    """Checks the syntax only (no DNS look-up). The local part must be ASCII: most relays
    cannot deliver to others (no SMTPUTF8); the domain is kept in its ASCII form."""
    try:
        checked = validate_email(field.data or "", check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        raise ValidationError(_l("Cette adresse e-mail n'est pas valide.")) from error
    field.data = checked.ascii_email


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class CancellationForm(FlaskForm):
    confirm = BooleanField(
        _l("Je ne pourrai pas venir : j'annule mon inscription."),
        validators=[DataRequired(_l("Cochez la case pour confirmer l'annulation."))],
    )


CHOOSE_A_WORKSHOP = _l("Choisissez un atelier.")
SAY_IF_LUNCH = _l("Dites-nous si vous prenez le lunch.")


def whole_number(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def one_of_the_choices(message):
    """A tampered or stale value gets the same message as no choice, not the library's."""

    def check(_form, field):
        if field.data not in {choice.value for choice in field.choices}:
            raise StopValidation(message)

    return check


class RegistrationForm(FlaskForm):
    first_name = StringField(
        _l("Prénom"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Indiquez votre prénom.")),
            Length(max=100, message=_l("100 caractères au maximum.")),
            without_control_characters(SINGLE_LINE_FORBIDDEN),
        ],
    )
    last_name = StringField(
        _l("Nom"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Indiquez votre nom.")),
            Length(max=100, message=_l("100 caractères au maximum.")),
            without_control_characters(SINGLE_LINE_FORBIDDEN),
        ],
    )
    email = StringField(
        _l("Adresse e-mail"),
        filters=[_strip],
        validators=[
            DataRequired(_l("Indiquez votre adresse e-mail.")),
            Length(max=254, message=_l("254 caractères au maximum.")),
            without_control_characters(SINGLE_LINE_FORBIDDEN),
            deliverable_syntax,
        ],
    )
    organisation = StringField(
        _l("Organisation (facultatif)"),
        filters=[_strip],
        validators=[
            Optional(),
            Length(max=200, message=_l("200 caractères au maximum.")),
            without_control_characters(SINGLE_LINE_FORBIDDEN),
        ],
    )
    workshop = RadioField(
        _l("Atelier"),
        coerce=whole_number,
        validators=[InputRequired(CHOOSE_A_WORKSHOP), one_of_the_choices(CHOOSE_A_WORKSHOP)],
        validate_choice=False,
    )
    lunch = RadioField(
        _l("Lunch"),
        choices=[SelectChoice("yes", _l("Oui")), SelectChoice("no", _l("Non"))],
        validators=[InputRequired(SAY_IF_LUNCH), one_of_the_choices(SAY_IF_LUNCH)],
        validate_choice=False,
    )
    dietary = TextAreaField(
        _l("Régime alimentaire ou allergies (facultatif)"),
        filters=[_strip],
        validators=[
            Optional(),
            Length(max=500, message=_l("500 caractères au maximum.")),
            without_control_characters(MULTI_LINE_FORBIDDEN),
        ],
    )
    consent = BooleanField(
        _l("J'accepte que mes données soient utilisées pour organiser la journée."),
        validators=[DataRequired(_l("Votre accord est nécessaire pour vous inscrire."))],
    )
    # A field people never see: bots fill it in.
    website = StringField(_l("Ne pas remplir"))

    def __init__(self, *args, workshops=(), lunch_offered=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.workshop.choices = [SelectChoice(w.number, w.title) for w in workshops]
        if not lunch_offered:
            del self.lunch

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        if self.website.data:
            # Said for the whole form: the field is hidden, nobody could correct it.
            self.form_errors.append(
                _l(
                    "Votre demande n'a pas pu être traitée. Si un outil de remplissage "
                    "automatique a complété le formulaire, désactivez-le et réessayez."
                )
            )
            return False
        return valid


class ParticipantDetailsForm(FlaskForm):
    """An organiser's correction of a registration: the same fields, limits and checks as the
    registration form."""

    first_name = RegistrationForm.first_name
    last_name = RegistrationForm.last_name
    organisation = RegistrationForm.organisation
    lunch = RegistrationForm.lunch
    dietary = RegistrationForm.dietary

    def __init__(self, *args, lunch_offered=True, **kwargs):
        super().__init__(*args, **kwargs)
        if not lunch_offered:
            del self.lunch
