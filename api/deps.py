"""FastAPI dependencies: runtime, database session, the parts the composition root handed in,
API key and role checks."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from rejse.contracts import ProfileEraser
from rejse.roles import Role
from rejse.runtime import Runtime

bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer <key>`")


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


def authenticate(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal:
    """The caller's key and role, or 401. A cache hit is a dict lookup; a miss (once per key
    per TTL) is one short indexed query, so this stays async-safe on the ingestion path."""
    if credentials is None or not credentials.credentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send `Authorization: Bearer <key>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    resolved = request.app.state.runtime.keys.resolve(credentials.credentials)
    if resolved is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid or revoked API key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Principal(key_id=resolved[0], role=resolved[1])


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    return authenticate(request, credentials)


# What `require(...)` returns: FastAPI calls it with the request and the bearer credentials.
RoleCheck = Callable[[Request, HTTPAuthorizationCredentials | None], Coroutine[Any, Any, Principal]]


def require(*roles: Role) -> RoleCheck:
    """Dependency factory: the key must have one of `roles` (admin always passes).

    One flat dependency (plus the bearer scheme, which documents auth in OpenAPI): FastAPI's
    dependency solving costs per node, and this runs on every request, ingestion included."""
    allowed = frozenset(roles) | {Role.admin}
    names = ", ".join(sorted(r.value for r in allowed))

    async def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Principal:
        principal = authenticate(request, credentials)
        if principal.role not in allowed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {principal.role.value!r} may not do this (needs one of: {names})",
            )
        return principal

    check.allowed_roles = allowed  # type: ignore[attr-defined]  # read by the auth matrix test
    return check


# Common role sets, so routers read like a policy table.
ADMIN = (Role.admin,)
READ = (Role.marketer, Role.analyst)  # control-plane reads
WRITE = (Role.marketer,)  # control-plane writes
INGEST = (Role.ingest,)
SALES = (Role.sales,)

AdminDep = Annotated[Principal, Depends(require(*ADMIN))]
ReadDep = Annotated[Principal, Depends(require(*READ))]
WriteDep = Annotated[Principal, Depends(require(*WRITE))]
IngestDep = Annotated[Principal, Depends(require(*INGEST))]
SalesDep = Annotated[Principal, Depends(require(*SALES))]
