"""What participants see: the programme, seats, registration and their own page."""

from flask import Blueprint

public = Blueprint("public", __name__)

from . import views  # noqa: E402, F401
