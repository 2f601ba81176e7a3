"""'trialdesk serve --production' behind a TLS-terminating proxy: waitress is told the proxy's address and the
headers it sets (settings TRIALDESK_TRUSTED_PROXY / TRIALDESK_TRUSTED_PROXY_HEADERS), so a request the proxy
forwards with X-Forwarded-Proto: https is served (no redirect loop) and its client address is the one the proxy
reports, while the same headers from anyone else are ignored (plain HTTP, redirected; their own address)."""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def server(settings) -> Iterator[tuple[int, list[str]]]:  # type: ignore[no-untyped-def]
    from django.core.wsgi import get_wsgi_application
    from waitress.server import create_server

    from trialdesk.edc.commands import waitress_options

    settings.TRIALDESK_TRUSTED_PROXY = "127.0.0.1"
    settings.ALLOWED_HOSTS = ["desk.example.org"]
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    django_app = get_wsgi_application()  # its security middleware reads the settings above
    seen: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        seen.append(environ.get("REMOTE_ADDR", ""))  # what the referral form's rate limit keys on
        return django_app(environ, start_response)

    srv = create_server(app, **waitress_options(host="127.0.0.1", port=0, threads=2))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    try:
        yield srv.effective_port, seen  # type: ignore[union-attr]
    finally:
        srv.close()


def _get(port: int, source: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10, source_address=(source, 0))
    conn.request("GET", "/static/edc/app.css", headers={"Host": "desk.example.org", **headers})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def _second_loopback() -> str:
    s = socket.socket()
    try:
        s.bind(("127.0.0.2", 0))
    except OSError:
        pytest.fail("this machine cannot use 127.0.0.2 as a source address (needed to play a client that is not the proxy)")
    finally:
        s.close()
    return "127.0.0.2"


def test_a_request_the_trusted_proxy_forwards_as_https_is_served_with_the_client_address_it_reports(server) -> None:  # type: ignore[no-untyped-def]
    port, seen = server
    response = _get(port, "127.0.0.1", {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    assert response.status == 200
    assert seen[-1] == "203.0.113.9"


def test_without_the_proxys_word_a_request_is_plain_http_and_redirected_to_https(server) -> None:  # type: ignore[no-untyped-def]
    port, _ = server
    response = _get(port, "127.0.0.1", {})
    assert response.status == 301 and response.getheader("Location", "").startswith("https://desk.example.org/")


def test_the_same_headers_from_anyone_else_are_ignored(server) -> None:  # type: ignore[no-untyped-def]
    port, seen = server
    response = _get(port, _second_loopback(), {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"})
    assert response.status == 301  # not believed: still plain HTTP
    assert seen[-1] == "127.0.0.2"  # and the client is who connected, not who it claims to be


def test_no_trusted_proxy_set_means_waitress_is_told_of_none(settings) -> None:  # type: ignore[no-untyped-def]
    from trialdesk.edc.commands import waitress_options

    settings.TRIALDESK_TRUSTED_PROXY = ""
    assert waitress_options(host="127.0.0.1", port=8000) == {"host": "127.0.0.1", "port": 8000}
