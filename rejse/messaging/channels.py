"""Delivery channels behind one interface: `deliver(message, rendered) -> provider id`.

- email: SMTP through aiosmtplib (`smtp://`, `smtps://` = implicit TLS, `?starttls=true`), or the
  development outbox (the message log itself) when no `REJSE_SMTP_URL` is set;
- sms: a Twilio-compatible HTTP API through httpx, or the outbox without `REJSE_SMS_API_URL`;
- in_app: the message log is the inbox (`GET /v1/inbox/{user_id}`), nothing to deliver;
- webhook: a JSON POST signed `X-Rejse-Signature: t=<unix>,v1=<hex>` over `"<t>.<body>"`.

A `PermanentFailure` (invalid address, a 5xx SMTP reply, an HTTP answer `rejse.outbound` calls
`Rejected`) is not retried; any other exception (`rejse.outbound.Transient` for HTTP 5xx, 408,
429 and network errors) is transient and Temporal retries the activity with backoff.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import threading
import time
from dataclasses import dataclass
from email import policy as email_policy
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import EmailPolicy, Policy
from email.utils import format_datetime, formataddr, parseaddr
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib
import httpx

from rejse import signatures
from rejse.messaging.mime import encoded, uri_list_lines
from rejse.messaging.smtp_pool import SmtpPool
from rejse.messaging.smtp_process import Handoff, SmtpProcess, SmtpProcessLost
from rejse.outbound import Rejected, request
from rejse.settings import Settings


class PermanentFailure(Exception):
    """Delivery can never succeed (bad address, rejected): recorded, not retried."""

    def __init__(self, reason: str, *, bounced: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.bounced = bounced


@dataclass
class Outgoing:
    """What a channel needs to deliver one message (rendered, tracked, addressed)."""

    message_id: str
    to: str | None
    subject: str | None
    text: str | None
    html: str | None
    headers: dict[str, str]
    payload: dict[str, Any] | None = None  # webhook body


class Channel(Protocol):
    name: str

    def deliver(self, out: Outgoing) -> str: ...


# ----------------------------------------------------------------------------- email


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool

    @classmethod
    def parse(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("REJSE_SMTP_URL must start with smtp:// or smtps://")
        query = parse_qs(parts.query)
        start_tls = query.get("starttls", ["false"])[0].lower() in ("1", "true", "yes")
        use_tls = parts.scheme == "smtps"
        return cls(
            host=parts.hostname or "localhost",
            port=parts.port or (465 if use_tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=use_tls,
            start_tls=start_tls and not use_tls,
        )


def message_id_header(message_id: str, email_from: str) -> str:
    domain = parseaddr(email_from)[1].rpartition("@")[2] or "rejse.local"
    return f"<{message_id}@{domain}>"


class UriListHeader(UnstructuredHeader, BaseHeader):
    """A header whose value is a list of `<URI>`s (`List-Unsubscribe`). Mailbox providers read
    it as it stands: the default folding of an unstructured header turns a line longer than the
    policy's limit into RFC 2047 encoded words, which hides the one-click URL. So an ASCII list
    is never encoded and breaks only at the whitespace between items (a URI never breaks; an
    item longer than the line limit gets a line of its own, within RFC 5322's 998)."""

    def fold(self, *, policy: Policy) -> str:
        lines = uri_list_lines(self.name, str(self), policy.max_line_length or 998)
        if lines is None:
            return super().fold(policy=policy)
        return policy.linesep.join(lines) + policy.linesep


class _MadeOnceRegistry(HeaderRegistry):
    """The standard registry makes a new header class (`type(...)`) every time a header is set;
    the classes are stateless, so each is made once per header name and kept. That halves the
    time of `build_email` (bench.messaging spends it on every send)."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(key)
        return made

    def map_to_type(self, name: str, cls: type[BaseHeader]) -> None:
        super().map_to_type(name, cls)
        self._made.pop(name.lower(), None)


def _email_policy() -> EmailPolicy[EmailMessage]:
    registry = _MadeOnceRegistry()
    registry.map_to_type("list-unsubscribe", UriListHeader)
    # The header objects are made when a header is set and fold themselves under whatever
    # policy flattens the message (aiosmtplib uses email.policy.SMTP), so this carries over.
    return email_policy.default.clone(header_factory=registry)


EMAIL_POLICY = _email_policy()


def build_email(out: Outgoing, *, email_from: str, now: dt.datetime | None = None) -> EmailMessage:
    msg = EmailMessage(policy=EMAIL_POLICY)
    msg["From"] = email_from
    msg["To"] = out.to or ""
    msg["Subject"] = out.subject or ""
    # an aware UTC time: formatdate(localtime=False) writes -0000, "zone unknown" (RFC 5322)
    msg["Date"] = format_datetime((now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC))
    msg["Message-ID"] = message_id_header(out.message_id, email_from)
    for name, value in out.headers.items():
        msg[name] = value
    msg.set_content(out.text or "", charset="utf-8")
    if out.html:
        msg.add_alternative(out.html, subtype="html", charset="utf-8")
    return msg


# One child per server and pool settings; one idle this long (nothing in flight) is closed when
# another is looked up, so a process that talked to many servers (a test run) keeps few.
_IDLE_PROCESS_SECONDS = 60.0
_PROCESSES: dict[tuple[Any, ...], SmtpProcess] = {}
_PROCESSES_LOCK = threading.Lock()


def smtp_process(settings: Settings, config: SmtpConfig, timeout: float) -> SmtpProcess:
    """The process's SMTP child for this server and these pool settings (one per worker
    process, holding its connection pool)."""
    key = (
        config,
        timeout,
        settings.smtp_pool_size,
        settings.smtp_messages_per_connection,
        settings.smtp_idle_timeout,
    )
    now = time.monotonic()
    with _PROCESSES_LOCK:
        for other, proc in list(_PROCESSES.items()):
            if other != key and not proc.busy and now - proc.used_at > _IDLE_PROCESS_SECONDS:
                del _PROCESSES[other]
                proc.close()
        found = _PROCESSES.get(key)
        if found is None:
            pool = SmtpPool(
                {
                    "hostname": config.host,
                    "port": config.port,
                    "username": config.username,
                    "password": config.password,
                    "use_tls": config.use_tls,
                    "start_tls": config.start_tls,
                    "timeout": timeout,
                },
                size=settings.smtp_pool_size,
                max_messages=settings.smtp_messages_per_connection,
                idle_timeout=settings.smtp_idle_timeout,
            )
            found = _PROCESSES[key] = SmtpProcess(pool)
        found.used_at = now
        return found


# Seconds from a batch's start within which each of its hand-offs must get its connection;
# one that does not raises `NotStarted` (nothing sent, so its retry is no duplicate). A batch
# waits for at most this plus one hand-off (connect and conversation, `timeout` each) plus a
# margin: 45 + 2 x 30 + 5 = 110 s, inside the send activity's 2-minute start-to-close timeout
# (workflows/journey.py SEND), so no attempt is timed out and retried while its message may
# still be going out.
HANDOFF_START_WINDOW = 45.0


class SmtpEmail:
    name = "email"

    def __init__(self, settings: Settings, *, timeout: float = 30.0) -> None:
        if not settings.smtp_url:
            raise ValueError("SmtpEmail needs REJSE_SMTP_URL (without it email goes to the outbox)")
        self.config = SmtpConfig.parse(settings.smtp_url)
        self.email_from = settings.email_from
        self.timeout = timeout
        self.settings = settings

    def deliver(self, out: Outgoing) -> str:
        result = self.deliver_many([out])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    @property
    def process(self) -> SmtpProcess:
        return smtp_process(self.settings, self.config, self.timeout)

    def deliver_many(self, outs: list[Outgoing]) -> list[str | BaseException]:
        """Every message handed off at once over the pool (as many in flight as it has
        connections, in the SMTP child process): each one's provider id (its Message-ID), or
        what its send raised (`PermanentFailure` for a 5xx reply, else the transient error as
        it came)."""
        ids = [message_id_header(out.message_id, self.email_from) for out in outs]
        handoffs = [self._handoff(out, mid) for out, mid in zip(outs, ids, strict=True)]
        # a hand-off starts within the window or not at all (NotStarted), and one that started
        # ends within a connect and a conversation: the batch within the send's timeout
        try:
            errors = self.process.deliver(
                handoffs,
                start_by=time.monotonic() + HANDOFF_START_WINDOW,
                timeout=HANDOFF_START_WINDOW + 2 * self.timeout + 5,
            )
        except SmtpProcessLost as lost:
            errors = [lost] * len(outs)
        return [
            mid if error is None else _smtp_failure(error)
            for mid, error in zip(ids, errors, strict=True)
        ]

    def _handoff(self, out: Outgoing, message_id: str) -> Handoff:
        """One message as the SMTP child sends it: its bytes written by
        `rejse.messaging.mime`, or the email package's message where that needs it (a non-ASCII
        address)."""
        now = dt.datetime.now(dt.UTC)
        raw = encoded(
            policy=EMAIL_POLICY,
            email_from=self.email_from,
            to=out.to or "",
            subject=out.subject or "",
            date=format_datetime(now),
            message_id=message_id,
            headers=out.headers,
            text=out.text or "",
            html=out.html,
        )
        if raw is None:
            return functools.partial(build_email, out, email_from=self.email_from, now=now)
        return (raw.sender, raw.recipients, raw.data)


def _smtp_failure(exc: BaseException) -> BaseException:
    """A 5xx reply as the `PermanentFailure` it is; anything else stays transient."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        codes = [err.code for err in exc.recipients]
        if codes and all(500 <= code < 600 for code in codes):
            return PermanentFailure(f"recipient refused ({codes[0]})", bounced=True)
    elif isinstance(exc, aiosmtplib.SMTPResponseException) and 500 <= exc.code < 600:
        return PermanentFailure(f"smtp {exc.code}", bounced=exc.code in (550, 551, 553))
    return exc


def deliver_all(channel: Channel, outs: list[Outgoing]) -> list[str | BaseException]:
    """`deliver` of many messages on one channel: at once where the channel can (SMTP over its
    pool), else one after the other; each one's provider id or what its delivery raised."""
    if isinstance(channel, SmtpEmail):
        return channel.deliver_many(outs)
    results: list[str | BaseException] = []
    for out in outs:
        try:
            results.append(channel.deliver(out))
        except Exception as exc:  # noqa: BLE001 - handed back to the caller, per message
            results.append(exc)
    return results


class Outbox:
    """Development outbox: the message log row is the delivery; read it at `GET /api/messages`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def deliver(self, out: Outgoing) -> str:
        return "outbox"


# ----------------------------------------------------------------------------- sms


class TwilioSms:
    """Twilio-compatible: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json`, form fields
    To/From/Body, basic auth (account sid + auth token)."""

    name = "sms"

    def __init__(self, settings: Settings, *, timeout: float = 15.0) -> None:
        if not settings.sms_api_url:
            raise ValueError(
                "TwilioSms needs REJSE_SMS_API_URL (without it sms goes to the outbox)"
            )
        self.url = (
            f"{settings.sms_api_url.rstrip('/')}/2010-04-01/Accounts/"
            f"{settings.sms_account_sid}/Messages.json"
        )
        self.auth = (settings.sms_account_sid or "", settings.sms_auth_token or "")
        self.sender = settings.sms_from or ""
        self.timeout = timeout

    def deliver(self, out: Outgoing) -> str:
        try:
            with httpx.Client(timeout=self.timeout) as client:
                response = request(
                    client,
                    "POST",
                    self.url,
                    what="sms provider",
                    data={"To": out.to or "", "From": self.sender, "Body": out.text or ""},
                    auth=self.auth,
                )
        except Rejected as exc:
            raise PermanentFailure(
                f"sms provider rejected ({exc.status}{_provider_code(exc.detail)})"
            ) from None
        try:
            return str(response.json().get("sid") or "sms")
        except ValueError:
            return "sms"


def _provider_code(detail: str) -> str:
    """The error code of a Twilio-style error body, as `" code <n>"` (or ""): only the code,
    since the rest of the answer may echo the number or the text."""
    try:
        body = json.loads(detail)
    except ValueError:
        return ""
    return f" code {body['code']}" if isinstance(body, dict) and body.get("code") else ""


# ----------------------------------------------------------------------------- webhook


class SignedWebhook:
    name = "webhook"

    def __init__(self, settings: Settings, *, timeout: float = 15.0) -> None:
        self.default_url = settings.message_webhook_url
        self.secret = settings.secret_key
        self.timeout = timeout

    def deliver(self, out: Outgoing) -> str:
        url = out.to or self.default_url
        if not url:
            raise PermanentFailure("no webhook url (REJSE_MESSAGE_WEBHOOK_URL or extra.url)")
        body = json.dumps(out.payload or {}, separators=(",", ":"), default=str).encode()
        try:
            with httpx.Client(timeout=self.timeout) as client:
                response = request(
                    client,
                    "POST",
                    url,
                    what="message webhook",
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        signatures.HEADER: signatures.sign(self.secret, body),
                        "Idempotency-Key": out.message_id,
                    },
                )
        except Rejected as exc:
            raise PermanentFailure(f"webhook rejected ({exc.status})") from None
        return f"webhook:{response.status_code}"


def channel_for(name: str, settings: Settings) -> Channel:
    if name == "email":
        return SmtpEmail(settings) if settings.smtp_url else Outbox("email")
    if name == "sms":
        return TwilioSms(settings) if settings.sms_api_url else Outbox("sms")
    if name == "webhook":
        return SignedWebhook(settings)
    return Outbox(name)


def formatted_from(name: str, address: str) -> str:
    return formataddr((name, address))
