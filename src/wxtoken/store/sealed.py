"""SealedStore: the TokenStore the manager uses, sealing secrets over any record store.

It holds the key (unlock.py negotiates it once per process from the store's recorded key
source), seals and opens the client secrets and tokens with associated data (binding.py),
computes fingerprints, and writes exactly what the manager decided: it keeps no domain rule
of its own beyond refusing to overwrite a token generation it was not told about. A backend
never sees a plaintext secret, so a database administrator of a shared store cannot read one.
"""

from __future__ import annotations

import contextlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from .._local import Settings
from ..errors import ProfileNotFound, StorageError, UsageError
from ..profile import Profile, keeps_tokens
from ..token import Token
from .binding import OLD_SECRET, secret_ad, token_ad
from .cipher import Cipher
from .records import (
    DEFAULT_PROFILE,
    Event,
    ProfileRow,
    RecordStore,
    TokenRecord,
    TokenRow,
)
from .unlock import StoreKey


def secrets_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _profile(row: ProfileRow) -> Profile:
    return Profile(
        name=row.name,
        client_id=row.client_id,
        redirect_uri=row.redirect_uri,
        scopes=row.scopes,
        base_url=row.base_url,
        kind=row.kind,
        extra=dict(row.extra),
    )


class SealedStore:
    """Profiles, client secrets, tokens and events, sealed with the store's key."""

    def __init__(
        self,
        records: RecordStore,
        settings: Settings,
        prompt: Callable[[str, bool], str] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.records = records
        self.settings = settings
        self._prompt = prompt
        self._clock = clock
        self._key = StoreKey(records, settings, prompt)

    def __repr__(self) -> str:
        return f"SealedStore({self.records!r})"

    @property
    def location(self) -> str:
        return self.records.location

    def close(self) -> None:
        self.records.close()

    # --- the key ---------------------------------------------------------------------------

    def key_source(self) -> str | None:
        return self.records.meta().get("key_source") if self.records.exists() else None

    def _get_cipher(self, create: bool = False) -> Cipher:
        return self._key.cipher(create)

    def fingerprint(self, secret: str) -> str:
        return self._get_cipher().fingerprint(secret)

    def unlock(self, create: bool = False) -> None:
        """Load the key now (a missing key fails here, before any other work)."""
        self._get_cipher(create=create)

    # --- profiles --------------------------------------------------------------------------

    def list_profiles(self) -> list[Profile]:
        return [_profile(r) for r in self.records.profiles()]

    def get_profile(self, name: str) -> Profile:
        row = self.records.profile(name)
        if row is None:
            raise ProfileNotFound(
                f"there is no profile named {name!r}",
                fix="see the profiles there are: wxtoken profile list",
            )
        return _profile(row)

    def save_profile(
        self,
        profile: Profile,
        client_secret: str | None,
        *,
        replace: bool,
        keep_old_secret: bool = True,
    ) -> bool:
        """Add or (with `replace`) update a profile; True if it existed. A secret of None keeps
        the stored one (a new one replaces only the newest of two held). Tokens are dropped when
        they no longer belong (`keeps_tokens`)."""
        cipher = self._get_cipher(create=True)
        with self.records.write("save the profile", create=True) as tx:
            old = tx.profile(profile.name)
            if old is not None and not replace:
                raise UsageError(
                    f"a profile named {profile.name!r} exists already",
                    fix=f"change one setting with `wxtoken profile set {profile.name} "
                    "--redirect-uri URI` (or --scopes, --base-url, --client-secret-stdin), or "
                    "add --replace to overwrite it whole",
                )
            if client_secret is None:
                if old is None:
                    raise UsageError(f"profile {profile.name!r} needs a client secret")
                client_secret = cipher.open(old.secret, secret_ad(old), what="client secret")
            # An older secret held for a rotation stays with its integration: re-sealed for the
            # new settings while the client id is the same, dropped with a new client id or when
            # the caller replaces the profile whole.
            old_secret = None
            if old is not None and old.old_secret is not None and keep_old_secret:
                if old.client_id == profile.client_id:
                    plain = cipher.open(
                        old.old_secret, secret_ad(old, field=OLD_SECRET), what="client secret"
                    )
                    old_secret = cipher.seal(plain, secret_ad(profile, field=OLD_SECRET))
            tx.put_profile(
                ProfileRow(
                    name=profile.name,
                    kind=profile.kind,
                    client_id=profile.client_id,
                    redirect_uri=profile.redirect_uri,
                    scopes=profile.scopes,
                    base_url=profile.base_url,
                    extra=dict(profile.extra),
                    secret=cipher.seal(client_secret, secret_ad(profile)),
                    created_at=old.created_at if old is not None else self._clock(),
                    old_secret=old_secret,
                    secret_added_at=old.secret_added_at
                    if old is not None and old_secret is not None
                    else None,
                )
            )
            dropped = old is not None and not keeps_tokens(_profile(old), profile)
            if dropped:
                tx.delete_token(profile.name)
            tx.event(
                profile.name,
                "profile_replaced" if old is not None else "profile_added",
                {
                    "kind": profile.kind,
                    "client_id": profile.client_id,
                    "scopes": list(profile.scopes),
                    "base_url": profile.base_url,
                    "tokens_dropped": dropped,
                },
            )
        return old is not None

    def remove_profile(self, name: str) -> None:
        self.get_profile(name)
        with self.records.write("remove the profile") as tx:
            tx.delete_profile(name)
            if tx.meta().get(DEFAULT_PROFILE) == name:
                tx.set_meta({DEFAULT_PROFILE: ""})  # a default that names nothing is none
            tx.event(name, "profile_removed", {})

    def default_profile(self) -> str | None:
        """The profile commands use without -p or WXTOKEN_PROFILE (read without the key)."""
        if not self.records.exists():
            return None
        return self.records.meta().get(DEFAULT_PROFILE) or None

    def set_default_profile(self, name: str | None) -> None:
        """Make `name` the default profile, or (None) have none."""
        if name is not None:
            self.get_profile(name)
        with self.records.write("set the default profile") as tx:
            tx.set_meta({DEFAULT_PROFILE: name or ""})
            tx.event(name, "default_profile", {"default": name})

    def _profile_row(self, name: str) -> ProfileRow:
        row = self.records.profile(name)
        if row is None:
            self.get_profile(name)  # raises ProfileNotFound
            raise AssertionError("unreachable")
        return row

    def client_secret(self, name: str) -> str:
        """The newest client secret."""
        return self.client_secrets(name)[0]

    def client_secrets(self, name: str) -> tuple[str, ...]:
        """The client secrets held, newest first: one, or two while the secret is rotated."""
        cipher = self._get_cipher()
        row = self._profile_row(name)
        newest = cipher.open(row.secret, secret_ad(row), what="client secret")
        if row.old_secret is None:
            return (newest,)
        older = cipher.open(row.old_secret, secret_ad(row, field=OLD_SECRET), what="client secret")
        return (newest, older)

    def secrets_held(self, name: str) -> tuple[int, float | None]:
        """How many client secrets a profile holds, and when the newest of two was added: read
        without the key, so status can show a rotation in progress."""
        row = self._profile_row(name)
        return (1, None) if row.old_secret is None else (2, row.secret_added_at)

    def add_client_secret(self, name: str, secret: str) -> None:
        """Hold `secret` as the newest client secret and keep the current one as the older.

        Two at most: a third would silently drop a secret that may be the only one Webex still
        accepts, so the older must be dropped explicitly first."""
        cipher = self._get_cipher()
        with self.records.write("add a client secret") as tx:
            row = tx.profile(name)
            if row is None:
                self.get_profile(name)
                raise AssertionError("unreachable")
            if row.old_secret is not None:
                raise UsageError(
                    f"profile {name!r} already holds two client secrets",
                    fix="drop the older one first (once Webex no longer needs it): "
                    f"wxtoken profile set {name} --drop-old-client-secret",
                )
            current = cipher.open(row.secret, secret_ad(row), what="client secret")
            if secrets_equal(current, secret):
                raise UsageError(
                    f"profile {name!r} already holds that client secret",
                    fix="copy the new secret from the integration's page at "
                    "developer.webex.com (after regenerating it) and add that",
                )
            tx.put_profile(
                replace(
                    row,
                    secret=cipher.seal(secret, secret_ad(row)),
                    old_secret=cipher.seal(current, secret_ad(row, field=OLD_SECRET)),
                    secret_added_at=self._clock(),
                )
            )
            tx.event(name, "client_secret_added", {"secret_fp": cipher.fingerprint(secret)})

    def drop_old_client_secret(self, name: str) -> bool:
        """Forget the older of two client secrets; False if only one was held."""
        with self.records.write("drop the older client secret") as tx:
            row = tx.profile(name)
            if row is None:
                self.get_profile(name)
                raise AssertionError("unreachable")
            if row.old_secret is None:
                return False
            tx.put_profile(replace(row, old_secret=None, secret_added_at=None))
            tx.event(name, "client_secret_dropped", {})
        return True

    # --- tokens ----------------------------------------------------------------------------

    def token_record(self, name: str) -> TokenRecord | None:
        row = self.records.token(name)
        return None if row is None else row.record

    def all_token_records(self) -> dict[str, TokenRecord]:
        return self.records.records()

    def load_token(self, name: str) -> tuple[TokenRecord, Token] | None:
        row = self.records.token(name)
        if row is None:
            return None
        rec = row.record
        cipher = self._get_cipher()
        access = cipher.open(
            row.access_token,
            token_ad(name, "access_token", rec.access_expires_at),
            what="access token",
        )
        refresh = None
        if row.refresh_token is not None:
            refresh = cipher.open(
                row.refresh_token,
                token_ad(name, "refresh_token", rec.refresh_expires_at),
                what="refresh token",
            )
        token = Token(
            access_token=access,
            access_expires_at=rec.access_expires_at,
            refresh_token=refresh,
            refresh_expires_at=rec.refresh_expires_at,
            scopes=rec.scopes,
            obtained_at=rec.obtained_at,
        )
        return rec, token

    def write_token(
        self,
        record: TokenRecord,
        token: Token,
        *,
        expect_generation: int | None,
        event: str,
        detail: Mapping[str, Any],
    ) -> TokenRecord:
        """Store `token` with the metadata the manager decided, if the stored generation is
        still `expect_generation` (None: no tokens stored); returns the stored record."""
        cipher = self._get_cipher()
        name = record.profile
        access_ct = cipher.seal(
            token.access_token, token_ad(name, "access_token", token.access_expires_at)
        )
        refresh_ct = None
        refresh_fp = None
        if token.refresh_token is not None:
            refresh_ct = cipher.seal(
                token.refresh_token, token_ad(name, "refresh_token", token.refresh_expires_at)
            )
            refresh_fp = cipher.fingerprint(token.refresh_token)
        record = replace(
            record, access_fp=cipher.fingerprint(token.access_token), refresh_fp=refresh_fp
        )
        with self.records.write("save tokens") as tx:
            if tx.profile(name) is None:
                raise ProfileNotFound(
                    f"profile {name!r} was removed while its tokens were being obtained",
                    fix="see the profiles there are: wxtoken profile list",
                )
            current = tx.token(name)
            generation = current.record.generation if current is not None else None
            if generation != expect_generation:
                raise StorageError(
                    f"the stored tokens of {name!r} changed while new ones were obtained "
                    "(another process wrote without the profile's lock); nothing was overwritten",
                    fix="retry; if it repeats, stop other tools writing to this store",
                )
            tx.put_token(TokenRow(record, access_ct, refresh_ct))
            tx.event(
                name,
                event,
                dict(
                    detail,
                    generation=record.generation,
                    access_fp=record.access_fp,
                    refresh_fp=record.refresh_fp,
                ),
            )
        return record

    def put_record(self, record: TokenRecord, *, event: str, detail: Mapping[str, Any]) -> None:
        """Update a token row's metadata (state, failures) and log why, in one transaction.

        Only over the generation it was read from: a record read before a refresh carries the
        old expiry its sealed token was bound to, and writing it over the new token would make
        that token fail its integrity check. A caller that did not hold the profile's lock may
        meet this and re-read.
        """
        with self.records.write("record the outcome") as tx:
            current = tx.token(record.profile)
            if current is None or current.record.generation != record.generation:
                raise StorageError(
                    f"the tokens of {record.profile!r} changed while this was being recorded "
                    "(another process refreshed or removed them); nothing was overwritten",
                    fix="retry",
                )
            tx.put_record(record)
            tx.event(record.profile, event, detail)

    def delete_token(self, name: str, *, event: str, detail: Mapping[str, Any]) -> None:
        with self.records.write("remove tokens") as tx:
            tx.delete_token(name)
            tx.event(name, event, detail)

    # --- events and locking ----------------------------------------------------------------

    def append_event(self, profile: str | None, kind: str, detail: Mapping[str, Any]) -> None:
        with self.records.write("record an event") as tx:
            tx.event(profile, kind, detail)

    def events(
        self,
        profile: str | None = None,
        kinds: tuple[str, ...] = (),
        limit: int = 100,
        since: float | None = None,
    ) -> list[Event]:
        return self.records.events(profile, kinds, limit, since)

    def refresh_lock(self, name: str, timeout: float) -> contextlib.AbstractContextManager[None]:
        return self.records.refresh_lock(name, timeout)

    def check_writable(self) -> None:
        self.records.check_writable()
