"""Whatever is posted to the registration form, the answer is never a server error."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FIELDS = ["first_name", "last_name", "email", "organisation", "workshop", "lunch", "dietary"]

field_values = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=30),
    st.sampled_from(["", "1", "3", "-1", "99", "yes", "no", "a@b.c", "\x00", "\r\n", "é" * 120]),
)
forms = st.fixed_dictionaries(
    {},
    optional={
        **{name: field_values for name in FIELDS},
        "consent": st.sampled_from(["y", "", "on", "\x00"]),
        "website": st.sampled_from(["", "spam"]),
    },
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(form=forms, htmx=st.booleans())
def test_random_registration_posts_never_get_a_5xx(app, event, form, htmx):
    client = app.test_client()  # a fresh client (and cookie jar) for every example
    headers = {"HX-Request": "true"} if htmx else {}
    response = client.post("/inscription", data=form, headers=headers)
    assert response.status_code < 500, (form, response.status_code)
    assert response.status_code in (200, 303, 422)
