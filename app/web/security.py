from flask import Response, current_app, request

# No inline script or style anywhere: behaviour lives in static/js, so the policy can forbid both.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def add_security_headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "static":  # pages, fragments, the API's JSON, CSV and export files hold people's data
        response.headers.setdefault("Cache-Control", "no-store")
    # Browsers honour HSTS only over HTTPS; behind a proxy, request.is_secure needs TRUSTED_PROXIES.
    hsts = current_app.config.get("HSTS_SECONDS", 0)
    if hsts and request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", f"max-age={hsts}; includeSubDomains")
    return response
