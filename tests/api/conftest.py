"""The API's world: the security world's people plus a client of ``world.project``, each with a token."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from app.services import api_tokens
from tests.security.conftest import World, world  # noqa: F401 - the fixture, shared

# Who calls the API in these tests: the security world's visitors, a client of world.project, and an
# admin whose token is read-only.
CALLERS = ("anonymous", "applicant", "trainer", "outsider", "reviewer", "stranger", "client", "admin", "admin_ro")


@dataclass
class ApiWorld:
    world: World
    client_user: object
    tokens: dict  # caller → bearer token (anonymous: none)


class Api:
    """The Flask test client, speaking as one caller or another: ``api.get(url, as_="trainer")``."""

    def __init__(self, client, tokens: dict):
        self.client = client
        self.tokens = tokens

    def headers(self, as_: str, extra: dict | None = None) -> dict:
        headers = dict(extra or {})
        if as_ != "anonymous":
            headers["Authorization"] = f"Bearer {self.tokens[as_]}"
        return headers

    def request(self, method: str, url: str, as_: str = "admin", headers: dict | None = None, **kwargs):
        return self.client.open(url, method=method, headers=self.headers(as_, headers), **kwargs)

    def get(self, url, as_="admin", **kwargs):
        return self.request("GET", url, as_, **kwargs)

    def post(self, url, as_="admin", **kwargs):
        return self.request("POST", url, as_, **kwargs)

    def patch(self, url, as_="admin", **kwargs):
        return self.request("PATCH", url, as_, **kwargs)

    def put(self, url, as_="admin", **kwargs):
        return self.request("PUT", url, as_, **kwargs)


def token_for(session, user, name: str = "tests", read_only: bool = False) -> str:
    return api_tokens.create(session, user, name, read_only=read_only).secret


@pytest.fixture
def api_world(session, world) -> ApiWorld:  # noqa: F811 - the imported fixture
    client_user = world.client
    people = {"applicant": world.applicant, "trainer": world.trainer, "outsider": world.outsider,
              "reviewer": world.reviewer, "stranger": world.stranger, "client": client_user, "admin": world.admin}
    tokens = {name: token_for(session, person) for name, person in people.items()}
    tokens["admin_ro"] = token_for(session, world.admin, "read only", read_only=True)
    return ApiWorld(world, client_user, tokens)


@pytest.fixture
def api(client, api_world) -> Api:
    return Api(client, api_world.tokens)
