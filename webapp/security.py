"""Security headers sent with every response."""

from flask import Flask, request

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ]
)


# Sent with every response, unless a view chose its own value.
SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)
# A year: once a browser has seen the site over https, it never tries plain http for it again.
STRICT_TRANSPORT_SECURITY = "max-age=31536000"


def security_headers(app: Flask) -> tuple[tuple[str, str], ...]:
    """What every response of this site carries: the above, and HSTS when served over https."""
    if app.config["PUBLIC_URL"].startswith("https://"):
        return (*SECURITY_HEADERS, ("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY))
    return SECURITY_HEADERS


def init_app(app: Flask) -> None:
    headers = security_headers(app)

    @app.after_request
    def add_security_headers(response):
        for name, value in headers:
            response.headers.setdefault(name, value)
        if request.endpoint in ("public.manage", "public.cancel"):
            # The URL itself is the participant's key.
            response.headers["Cache-Control"] = "private, no-store"
            # The origin only: Flask-WTF wants a Referer on HTTPS posts, the token stays out.
            response.headers["Referrer-Policy"] = "strict-origin"
            response.headers["X-Robots-Tag"] = "noindex"
        return response
