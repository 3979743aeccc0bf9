"""A local OpenID Connect provider for tests: what Streamlit's `st.login` (Authlib) needs, and no more.

    with OIDCStandIn() as idp:
        idp.identity = {"sub": "u-1", "email": "ana@example.com", "email_verified": True}
        # [auth] server_metadata_url = idp.metadata_url, client_id = idp.client_id, ...

- GET  /.well-known/openid-configuration: discovery;
- GET  /authorize: approves at once as `identity`, back to the redirect_uri with a one-time code
  (the client id and redirect_uri must be the registered ones; `state` and `nonce` are kept);
- POST /token: the code (with the client's secret, and the PKCE verifier when one was sent) for an
  access token and an RS256 id_token carrying `identity`, the nonce, this issuer and the client id;
- GET  /jwks: the public key that checks it; GET /userinfo: the identity, for the access token.

Stdlib, plus joserfc (Authlib's JOSE library) for the key and the token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey


class OIDCStandIn:
    def __init__(self, client_id: str = "aixchange-images", client_secret: str = "stand-in-client-secret"):
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uris: set[str] = set()  # registered by the test; anything else is refused
        self.identity: dict[str, Any] = {}
        self.authorizations = 0
        self._key = RSAKey.generate_key(2048, parameters={"kid": "stand-in", "use": "sig", "alg": "RS256"})
        self._codes: dict[str, dict[str, Any]] = {}
        self._tokens: dict[str, dict[str, Any]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
        }

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        if query.get("client_id") != self.client_id or query.get("redirect_uri") not in self.redirect_uris:
            return 400, {}, {"error": "invalid_request"}
        code = secrets.token_urlsafe(16)
        self._codes[code] = {**query, "identity": dict(self.identity)}
        self.authorizations += 1
        back = {"code": code, **({"state": query["state"]} if "state" in query else {})}
        return 302, {"Location": f"{query['redirect_uri']}?{urlencode(back)}"}, None

    def token(self, form: dict[str, str], authorization: str) -> tuple[int, dict[str, str], Any]:
        grant = self._codes.pop(form.get("code", ""), None)
        if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {}, {"error": "invalid_grant"}
        if not self._client_ok(form, authorization) or not _pkce_ok(grant, form.get("code_verifier")):
            return 401, {}, {"error": "invalid_client"}
        access = secrets.token_urlsafe(16)
        self._tokens[access] = grant["identity"]
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300, **grant["identity"]}
        if "nonce" in grant:
            claims["nonce"] = grant["nonce"]
        id_token = jwt.encode({"alg": "RS256", "kid": "stand-in"}, claims, self._key)
        body = {"access_token": access, "token_type": "Bearer", "expires_in": 300, "id_token": id_token}
        return 200, {}, {**body, "scope": grant.get("scope", "openid")}

    def userinfo(self, authorization: str) -> tuple[int, dict[str, str], Any]:
        identity = self._tokens.get(authorization.removeprefix("Bearer "))
        return (200, {}, identity) if identity is not None else (401, {}, {"error": "invalid_token"})

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._key.as_dict(private=False)]}

    def _client_ok(self, form: dict[str, str], authorization: str) -> bool:
        if authorization.startswith("Basic "):
            client, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
        else:
            client, secret = form.get("client_id", ""), form.get("client_secret", "")
        return (client, secret) == (self.client_id, self.client_secret)


def _pkce_ok(grant: dict[str, Any], verifier: str | None) -> bool:
    if "code_challenge" not in grant:
        return True
    digest = hashlib.sha256((verifier or "").encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == grant["code_challenge"]


def _handler(idp: OIDCStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            routes = {
                "/.well-known/openid-configuration": lambda: (200, {}, idp.discovery()),
                "/authorize": lambda: idp.authorize(query),
                "/jwks": lambda: (200, {}, idp.jwks()),
                "/userinfo": lambda: idp.userinfo(self.headers.get("Authorization", "")),
            }
            self._answer(*routes.get(url.path, lambda: (404, {}, {"error": "not_found"}))())

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            form = {k: v[0] for k, v in parse_qs(body).items()}
            if urlsplit(self.path).path != "/token":
                return self._answer(404, {}, {"error": "not_found"})
            self._answer(*idp.token(form, self.headers.get("Authorization", "")))

        def _answer(self, status: int, headers: dict[str, str], body: Any) -> None:
            data = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for name, value in {**headers, "Content-Type": "application/json"}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
