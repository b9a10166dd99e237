"""Access key -> who signed: the server's root key, any account's root keys, IAM user keys and
temporary (STS) credentials; canonical id -> account (bucket owners).

Lookups are cached in-process for at most `ttl` seconds (default 1 s): a change made through this
process clears the cache at once; a change made through another process sharing the database (a
second worker or gateway) is seen within `ttl` (decision 0013).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

from pails.iam.credentials import Credential, Identity, IdentityKind
from pails.iam.ids import TEMP_KEY_PREFIX
from pails.iam.policy import MalformedPolicy, Policy, parse_policy
from pails.iam.serverkey import ServerKeyError, ServerKeys
from pails.iam.sessions import Session, SessionKind, TokenInvalid, decode
from pails.meta.iam_models import Account
from pails.meta.iam_store import IdentityStore

log = logging.getLogger("pails.iam")

ADMIN_ACCOUNT = "000000000000"
_MAX_ENTRIES = 10_000


class TokenRevoked(TokenInvalid):
    """The session's source key (or role) no longer exists or is disabled."""


def root_arn(account_id: str) -> str:
    return f"arn:aws:iam::{account_id}:root"


def parse_documents(documents: list[str]) -> tuple[Policy, ...]:
    out = []
    for text in documents:
        try:
            out.append(parse_policy(text, forbid_principal=True))
        except MalformedPolicy:  # validated when stored; never let one bad row lock a user out
            log.warning("skipping a stored identity policy that no longer parses")
    return tuple(out)


class CredentialStore:
    """The authenticator's view of IAM (Services.credentials)."""

    def __init__(self, root: Credential, store: IdentityStore, keys: ServerKeys, *, ttl: float = 1.0) -> None:
        self.root = root
        self.store = store
        self.keys = keys
        self.ttl = ttl
        self._keys: dict[str, tuple[float, Credential | None]] = {}
        self._tokens: dict[str, tuple[float, Credential]] = {}
        self._accounts: dict[str, Account] = {}
        self._by_canonical: dict[str, Account] = {}
        self._accounts_loaded = -1.0
        self.on_invalidate: Callable[[], Awaitable[None]] | None = None
        """Also tells these (the other workers of a --workers group; gateways rely on the TTL)."""

    # -- cache --------------------------------------------------------------------------------

    def invalidate(self) -> None:
        """Forget every cached lookup (after any IAM change made through this process)."""
        self._keys.clear()
        self._tokens.clear()
        self._accounts_loaded = -1.0

    async def changed(self) -> None:
        """An IAM change was committed through this process: forget cached lookups here and in the
        other workers of a --workers group before answering, so a revoked key stops at once."""
        self.invalidate()
        if self.on_invalidate is not None:
            await self.on_invalidate()

    async def refresh_accounts(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._accounts_loaded < self.ttl:
            return
        accounts = await self.store.list_accounts()
        self._accounts = {a.account_id: a for a in accounts}
        self._by_canonical = {a.canonical_id: a for a in accounts}
        self._accounts_loaded = now

    async def account(self, account_id: str) -> Account | None:
        found = self._accounts.get(account_id)
        if found is None:
            await self.refresh_accounts(force=True)
            found = self._accounts.get(account_id)
        return found

    # -- owners -------------------------------------------------------------------------------

    def identity_of(self, canonical_id: str) -> Identity | None:
        """The account (root identity) a canonical id (e.g. a bucket's owner_id) belongs to."""
        root = self.root.identity
        if canonical_id == root.canonical_id:
            return root
        account = self._by_canonical.get(canonical_id)
        return None if account is None else self.account_identity(account)

    def account_of(self, canonical_id: str) -> str | None:
        """The account id of the owner with this canonical id (x-amz-expected-bucket-owner)."""
        identity = self.identity_of(canonical_id)
        return identity.account_id if identity is not None else None

    def account_identity(self, account: Account, access_key: str = "") -> Identity:
        return Identity(
            access_key=access_key,
            account_id=account.account_id,
            canonical_id=account.canonical_id,
            display_name=account.name,
            is_root=True,
            is_admin=account.account_id == ADMIN_ACCOUNT,
            kind=IdentityKind.ROOT,
            arn=root_arn(account.account_id),
            user_id=account.account_id,
        )

    # -- lookups ------------------------------------------------------------------------------

    async def lookup(self, access_key: str, security_token: str | None = None) -> Credential | None:
        """The credential for a request's access key (None: unknown, inactive or deleted).

        With a session token: raises sessions.TokenExpired / TokenInvalid (TokenRevoked).

        A cached long-term key is a couple of dict hits: no coroutine is awaited."""
        now = time.monotonic()
        if now - self._accounts_loaded >= self.ttl:
            await self.refresh_accounts()
            now = time.monotonic()
        if security_token is not None:
            return await self._session(access_key, security_token)
        if access_key.startswith(TEMP_KEY_PREFIX):
            return None  # temporary keys only work with their token
        hit, credential = self._known(access_key, now)
        return credential if hit else await self._long_term(access_key)

    def cached(self, access_key: str) -> Credential | None:
        """What :meth:`lookup` (without a session token) would return, when that is known without
        any I/O; None when it is not (then await :meth:`lookup`). Saves the request's coroutine."""
        now = time.monotonic()
        if now - self._accounts_loaded >= self.ttl or access_key.startswith(TEMP_KEY_PREFIX):
            return None
        return self._known(access_key, now)[1]

    def _known(self, access_key: str, now: float) -> tuple[bool, Credential | None]:
        """(True, the credential) for the root or a long-term key whose cache entry has not
        expired, the entry being None for an unknown key; (False, None): look it up."""
        if access_key == self.root.identity.access_key:
            return True, self.root
        cached = self._keys.get(access_key)
        if cached is not None and cached[0] > now:
            return True, cached[1]
        return False, None

    async def _long_term(self, access_key: str) -> Credential | None:
        now = time.monotonic()
        hit, credential = self._known(access_key, now)
        if hit:
            return credential
        credential = await self._load_key(access_key)
        if len(self._keys) >= _MAX_ENTRIES:
            self._keys.clear()
        self._keys[access_key] = (now + self.ttl, credential)
        return credential

    async def _load_key(self, access_key: str) -> Credential | None:
        key = await self.store.get_access_key(access_key)
        if key is None or key.status != "Active":
            return None
        account = await self.account(key.account_id)
        if account is None:
            return None
        try:
            secret = self.keys.secrets.open(key.secret, key.access_key_id)
        except ServerKeyError:
            log.error(
                "access key %s: its secret does not decrypt (was PAILS_SERVER_KEY changed?)", access_key
            )
            return None
        if key.user_id is None:
            return Credential(self.account_identity(account, access_key), secret)
        user = await self.store.get_user_by_id(key.user_id)
        if user is None:
            return None
        policies = parse_documents(await self.store.user_policy_documents(user.user_id))
        identity = Identity(
            access_key=access_key,
            account_id=account.account_id,
            canonical_id=account.canonical_id,
            display_name=account.name,
            kind=IdentityKind.USER,
            arn=user.arn,
            user_name=user.name,
            user_id=user.user_id,
            policies=policies,
        )
        return Credential(identity, secret)

    async def _session(self, access_key: str, token: str) -> Credential:
        now = time.time()
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()
        cached = self._tokens.get(digest)
        mono = time.monotonic()
        if cached is not None and cached[0] > mono:
            credential = cached[1]
            if credential.identity.expires_at is not None and now >= credential.identity.expires_at:
                decode(token, self.keys, now=now)  # raises TokenExpired
        else:
            credential = await self._load_session(decode(token, self.keys, now=now))
            if len(self._tokens) >= _MAX_ENTRIES:
                self._tokens.clear()
            self._tokens[digest] = (mono + self.ttl, credential)
        if credential.identity.access_key != access_key:
            raise TokenInvalid("the token belongs to another access key")
        return credential

    async def _load_session(self, session: Session) -> Credential:
        source = await self._long_term(session.source_key)
        if source is None:
            raise TokenRevoked("the key this session was obtained with is disabled or deleted")
        if session.kind is SessionKind.SESSION:
            identity = replace(
                source.identity,
                access_key=session.access_key,
                kind=IdentityKind.SESSION,
                expires_at=float(session.expires_at),
            )
            return Credential(identity, session.secret_key)
        role = await self.store.get_role_by_id(session.role_id)
        account = await self.account(session.account_id)
        if role is None or account is None or role.account_id != account.account_id:
            raise TokenRevoked("the role of this session no longer exists")
        session_policy = None
        if session.session_policy:
            try:
                session_policy = parse_policy(session.session_policy, forbid_principal=True)
            except MalformedPolicy:
                raise TokenInvalid("session policy") from None
        identity = Identity(
            access_key=session.access_key,
            account_id=account.account_id,
            canonical_id=account.canonical_id,
            display_name=account.name,
            kind=IdentityKind.ASSUMED_ROLE,
            arn=f"arn:aws:sts::{account.account_id}:assumed-role/{role.name}/{session.role_session_name}",
            user_id=f"{role.role_id}:{session.role_session_name}",
            policies=parse_documents(await self.store.policy_documents(role.role_id)),
            session_policy=session_policy,
            expires_at=float(session.expires_at),
        )
        return Credential(identity, session.secret_key)
