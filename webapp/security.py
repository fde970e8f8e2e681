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


# A year: once a browser has seen the site over https, it never tries plain http for it again.
STRICT_TRANSPORT_SECURITY = "max-age=31536000"


def init_app(app: Flask) -> None:
    https_only = app.config["PUBLIC_URL"].startswith("https://")

    @app.after_request
    def add_security_headers(response):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if https_only:
            response.headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
        if request.endpoint in ("public.manage", "public.cancel"):
            # The URL itself is the participant's key.
            response.headers["Cache-Control"] = "private, no-store"
            # The origin only: Flask-WTF wants a Referer on HTTPS posts, the token stays out.
            response.headers["Referrer-Policy"] = "strict-origin"
            response.headers["X-Robots-Tag"] = "noindex"
        return response
