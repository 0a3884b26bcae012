"""Real HTTP servers on loopback standing in for HubSpot, Salesforce, a CRM webhook receiver
and Slack. Each checks the exact request shape (400 with the reason when it is wrong), records
what it received, and can be told to answer 503 / 429 / 400 for the next requests."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TOKEN = "test-token"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class FakeServer:
    """Starlette under uvicorn in a thread. Subclasses add routes with `handle` functions."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.scripted: deque[tuple[int, dict[str, str]]] = deque()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        app = Starlette(routes=[Route(p, self._wrap(h), methods=m) for p, m, h in self.routes()])
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self._sock])), daemon=True
        )

    def routes(self) -> list[tuple[str, list[str], Any]]:
        raise NotImplementedError

    def fail_next(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        self.scripted.extend([(status, headers or {})] * times)

    def _wrap(self, handler):
        async def endpoint(request: Request) -> Response:
            body = await request.body()
            self.received.append(
                Received(request.method, request.url.path, dict(request.headers), body)
            )
            if self.scripted:
                status, headers = self.scripted.popleft()
                return JSONResponse(
                    {
                        "message": f"scripted {status}",
                        "category": "VALIDATION_ERROR" if status == 400 else "ERROR",
                    },
                    status_code=status,
                    headers=headers,
                )
            return await handler(request, body)

        return endpoint

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)

    def paths(self) -> list[str]:
        return [r.path for r in self.received]


def _bad(message: str) -> JSONResponse:
    return JSONResponse(
        {"status": "error", "message": message, "category": "VALIDATION_ERROR"}, status_code=400
    )


class FakeHubSpot(FakeServer):
    """`POST /crm/v3/objects/contacts/batch/upsert` and `POST /crm/v3/objects/tasks`."""

    def __init__(self) -> None:
        self.contacts: dict[str, dict[str, Any]] = {}
        self.tasks: list[dict[str, Any]] = []
        super().__init__()

    def routes(self):
        return [
            ("/crm/v3/objects/contacts/batch/upsert", ["POST"], self.upsert),
            ("/crm/v3/objects/tasks", ["POST"], self.task),
        ]

    @staticmethod
    def _auth(request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse({"message": "bad token"}, status_code=401)
        return None

    async def upsert(self, request: Request, body: bytes) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        data = json.loads(body)
        if (
            set(data) != {"inputs"}
            or not isinstance(data["inputs"], list)
            or len(data["inputs"]) != 1
        ):
            return _bad("body must be {inputs: [one input]}")
        item = data["inputs"][0]
        if set(item) != {"id", "idProperty", "properties"} or item["idProperty"] != "email":
            return _bad("input must be {id, idProperty: email, properties}")
        if item["properties"].get("email") != item["id"] or "@" not in item["id"]:
            return _bad("properties.email must equal id")
        if not all(isinstance(v, str) for v in item["properties"].values()):
            return _bad("property values must be strings")
        new = item["id"] not in self.contacts
        contact = self.contacts.setdefault(item["id"], {"id": str(1000 + len(self.contacts))})
        contact.update(item["properties"])
        return JSONResponse(
            {
                "status": "COMPLETE",
                "results": [{"id": contact["id"], "new": new, "properties": item["properties"]}],
            }
        )

    async def task(self, request: Request, body: bytes) -> Response:
        if (denied := self._auth(request)) is not None:
            return denied
        data = json.loads(body)
        props = data.get("properties") or {}
        required = {
            "hs_timestamp",
            "hs_task_subject",
            "hs_task_body",
            "hs_task_status",
            "hs_task_priority",
        }
        if set(data) != {"properties", "associations"} or not required <= set(props):
            return _bad(
                "task needs properties (" + ", ".join(sorted(required)) + ") and associations"
            )
        assoc = data["associations"]
        ids = {c["id"] for c in self.contacts.values()}
        if (
            len(assoc) != 1
            or assoc[0]["to"]["id"] not in ids
            or assoc[0]["types"]
            != [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}]
        ):
            return _bad("task must be associated with a known contact (HUBSPOT_DEFINED 204)")
        if not props["hs_timestamp"].endswith("Z"):
            return _bad("hs_timestamp must be UTC ISO-8601")
        task = {"id": str(5000 + len(self.tasks)), **data}
        self.tasks.append(task)
        return JSONResponse({"id": task["id"], "properties": props}, status_code=201)


class FakeSalesforce(FakeServer):
    def __init__(self) -> None:
        self.leads: dict[str, dict[str, Any]] = {}
        super().__init__()

    def routes(self):
        return [
            (
                "/services/data/v60.0/sobjects/Lead/Rejse_Profile_Id__c/{value}",
                ["PATCH"],
                self.upsert,
            )
        ]

    async def upsert(self, request: Request, body: bytes) -> Response:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return JSONResponse([{"errorCode": "INVALID_SESSION_ID"}], status_code=401)
        data = json.loads(body)
        value = request.path_params["value"]
        if value not in self.leads and not {"LastName", "Company"} <= set(data):
            return JSONResponse([{"errorCode": "REQUIRED_FIELD_MISSING"}], status_code=400)
        created = value not in self.leads
        self.leads.setdefault(value, {}).update(data)
        if created:
            return JSONResponse(
                {"id": "00Q" + value[-12:], "success": True, "errors": [], "created": True},
                status_code=201,
            )
        return Response(status_code=204)


class FakeWebhook(FakeServer):
    """Slack-compatible incoming webhook and generic CRM webhook receiver: POST / with JSON."""

    def routes(self):
        return [("/hook/{name}", ["POST"], self.hook)]

    async def hook(self, request: Request, body: bytes) -> Response:
        try:
            data = json.loads(body)
        except ValueError:
            return _bad("invalid JSON")
        if not isinstance(data, dict):
            return _bad("JSON object expected")
        return Response("ok")

    def for_hook(self, name: str) -> list[Received]:
        return [r for r in self.received if r.path == f"/hook/{name}"]
