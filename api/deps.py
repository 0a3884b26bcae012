"""FastAPI dependencies: runtime, database session, the parts the composition root handed in,
API key and role checks."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import (
    HTTPAuthorizationCredentials,
    HTTPBasic,
    HTTPBasicCredentials,
    HTTPBearer,
)
from sqlmodel import Session
from starlette.requests import HTTPConnection

from api.ratelimit import enforce
from rejse.contracts import ProfileEraser
from rejse.roles import Role
from rejse.runtime import Runtime

bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer <key>`")
BEARER_ONLY = "Bearer"
BEARER_OR_BASIC = 'Bearer, Basic realm="rejse"'


class KeyAsUserName(HTTPBasic):
    """HTTP Basic as Segment's and RudderStack's SDKs send it: the write key as the user name,
    no password. Its 401s challenge for both schemes the ingestion routes take."""

    def make_authenticate_headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": BEARER_OR_BASIC}

    async def __call__(  # type: ignore[override]  # FastAPI's HTTPBasic narrows it the same way
        self, request: HTTPConnection
    ) -> HTTPBasicCredentials | None:
        try:
            return await super().__call__(request)
        except HTTPException:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "malformed HTTP Basic credentials: base64 of `<key>:` expected",
                headers=self.make_authenticate_headers(),
            ) from None


basic = KeyAsUserName(
    scheme_name="HTTPBasic",
    auto_error=False,
    description="Ingestion (`/v1`) only: the API key as the user name, empty password "
    "(`Authorization: Basic base64(<key>:)`), as the Segment and RudderStack SDKs send it",
)


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_profile_erasers(request: Request) -> Sequence[ProfileEraser]:
    erasers: Sequence[ProfileEraser] = request.app.state.profile_erasers
    return erasers


async def get_activity_names(request: Request) -> frozenset[str]:
    names: frozenset[str] = request.app.state.activity_names
    return names


# Handed to `create_app` by the composition root: what GDPR erase runs, and which activities a
# published journey may call.
ProfileErasersDep = Annotated[Sequence[ProfileEraser], Depends(get_profile_erasers)]
ActivityNamesDep = Annotated[frozenset[str], Depends(get_activity_names)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    """One session per request; the endpoint commits what it wants kept."""
    with Session(runtime.engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: Role


def authenticate(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None,
    basic_credentials: HTTPBasicCredentials | None = None,
    *,
    challenge: str = BEARER_ONLY,
) -> Principal:
    """The caller's key and role, or 401. A cache hit is a dict lookup; a miss (once per key
    per TTL) is one short indexed query, so this stays async-safe on the ingestion path.
    `basic_credentials` (ingestion only) carry the key as the user name."""
    key = credentials.credentials if credentials is not None else None
    if not key and basic_credentials is not None:
        key = basic_credentials.username
    if not key:
        how = "`Authorization: Bearer <key>`"
        if challenge != BEARER_ONLY:
            how += " or HTTP Basic with the key as user name"
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            f"missing API key: send {how}",
            headers={"WWW-Authenticate": challenge},
        )
    resolved = request.app.state.runtime.keys.resolve(key)
    if resolved is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid or revoked API key",
            headers={"WWW-Authenticate": challenge},
        )
    return Principal(key_id=resolved[0], role=resolved[1])


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    return authenticate(request, credentials)


# What `require(...)` returns: FastAPI calls it with the request and the credentials of its
# schemes (bearer; bearer and basic for ingestion).
RoleCheck = Callable[..., Coroutine[Any, Any, Principal]]


def require(*roles: Role, basic_auth: bool = False) -> RoleCheck:
    """Dependency factory: the key must have one of `roles` (admin always passes), and the
    request then counts against the key's rate limit (`api.ratelimit`: 429 when over).
    `basic_auth=True` (the `/v1` ingestion routes) also takes the key as HTTP Basic user name.

    One flat dependency (plus the auth schemes, which document auth in OpenAPI): FastAPI's
    dependency solving costs per node, and this runs on every request, ingestion included.
    `check.from_request(request)` runs the same check without the solver (`LeanRoute`)."""
    allowed = frozenset(roles) | {Role.admin}
    names = ", ".join(sorted(r.value for r in allowed))

    def decide(principal: Principal) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {principal.role.value!r} may not do this (needs one of: {names})",
            )
        return principal

    check: RoleCheck
    if basic_auth:

        async def check_bearer_or_basic(
            request: Request,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
            basic_credentials: Annotated[HTTPBasicCredentials | None, Depends(basic)],
        ) -> Principal:
            principal = decide(
                authenticate(request, credentials, basic_credentials, challenge=BEARER_OR_BASIC)
            )
            await enforce(request, principal.key_id)
            return principal

        async def from_request(request: Request) -> Principal:
            credentials = await bearer(request)
            basic_credentials = None if credentials else await basic(request)
            return await check_bearer_or_basic(request, credentials, basic_credentials)

        check = check_bearer_or_basic
    else:

        async def check_bearer(
            request: Request,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        ) -> Principal:
            principal = decide(authenticate(request, credentials))
            await enforce(request, principal.key_id)
            return principal

        async def from_request(request: Request) -> Principal:
            return await check_bearer(request, await bearer(request))

        check = check_bearer

    _describe(check, allowed=allowed, from_request=from_request)
    return check


def _describe(
    check: Any,
    *,
    allowed: frozenset[Role],
    from_request: Callable[[Request], Coroutine[Any, Any, Principal]],
) -> None:
    check.allowed_roles = allowed  # read by the auth matrix test
    check.from_request = from_request  # run by LeanRoute


# Common role sets, so routers read like a policy table.
ADMIN = (Role.admin,)
READ = (Role.marketer, Role.analyst)  # control-plane reads
WRITE = (Role.marketer,)  # control-plane writes
INGEST = (Role.ingest,)  # with HTTP Basic too (IngestDep), as analytics SDKs authenticate
SALES = (Role.sales,)

AdminDep = Annotated[Principal, Depends(require(*ADMIN))]
ReadDep = Annotated[Principal, Depends(require(*READ))]
WriteDep = Annotated[Principal, Depends(require(*WRITE))]
IngestDep = Annotated[Principal, Depends(require(*INGEST, basic_auth=True))]
SalesDep = Annotated[Principal, Depends(require(*SALES))]
