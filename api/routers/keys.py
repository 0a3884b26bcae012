"""API key administration (admin only). The raw key is shown once, at creation."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from api.deps import AdminDep, RuntimeDep, SessionDep
from api.errors import NOT_FOUND
from rejse import keys as key_service
from rejse.errors import NotFound
from rejse.inputs import Text
from rejse.roles import Role

router = APIRouter(prefix="/api/keys", tags=["keys"])


class KeyCreate(BaseModel):
    name: Text = Field(min_length=1, max_length=200)
    role: Role
    rep_id: Text | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="sales keys only: the rep whose leads the key sees and changes; "
        "null or left out: every rep's (a sales manager's key)",
    )


class KeyPublic(BaseModel):
    id: str
    name: str
    role: Role
    rep_id: str | None = Field(default=None, description="the rep a sales key is bound to")
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None


class KeyCreated(KeyPublic):
    key: str = Field(description="The API key. Shown only now; store it safely.")


@router.post("", status_code=status.HTTP_201_CREATED, response_model=KeyCreated)
def create_key(body: KeyCreate, session: SessionDep, _: AdminDep) -> KeyCreated:
    row, raw = key_service.create_key(session, name=body.name, role=body.role, rep_id=body.rep_id)
    session.commit()
    return KeyCreated(**row.model_dump(exclude={"key_hash"}), key=raw)


@router.get("", response_model=list[KeyPublic])
def list_keys(session: SessionDep, _: AdminDep) -> list[KeyPublic]:
    return [KeyPublic(**r.model_dump(exclude={"key_hash"})) for r in key_service.list_keys(session)]


@router.delete("/{key_id}", response_model=KeyPublic, responses=NOT_FOUND)
def revoke_key(key_id: str, session: SessionDep, runtime: RuntimeDep, _: AdminDep) -> KeyPublic:
    row = key_service.revoke_key(session, key_id=key_id)
    if row is None:
        raise NotFound(f"no API key with id {key_id!r}", field="key_id")
    session.commit()
    runtime.keys.forget()
    return KeyPublic(**row.model_dump(exclude={"key_hash"}))
