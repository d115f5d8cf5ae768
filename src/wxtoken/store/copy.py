"""`wxtoken store copy`: move a whole store between backends (SQLite <-> PostgreSQL).

Profiles, tokens, the event log (hand-offs, alerts sent, causes) and the default profile are
copied in one write transaction on the target, so a failed copy leaves the target as it was.
Every sealed value is opened with the source's key and sealed again with the target's: the
target has its own key under the same key source (a passphrase gives a new salt; a key file is
the same file). Fingerprints are keyed too, so they are recomputed, and the recorder copy's
fingerprint follows its token. The source is only read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import UsageError
from .binding import OLD_SECRET, secret_ad, token_ad
from .cipher import Cipher
from .records import DEFAULT_PROFILE, ProfileRow, TokenRow
from .sealed import SealedStore

MAX_EVENTS = 100_000_000


@dataclass(frozen=True)
class Copied:
    profiles: int
    tokens: int
    events: int


def copy_store(source: SealedStore, target: SealedStore, target_name: str) -> Copied:
    if not source.records.exists():
        raise UsageError(
            f"there is no store at {source.location} to copy",
            fix="check WXTOKEN_STORE / WXTOKEN_HOME: they name the store copied from",
        )
    if source.records.location == target.records.location:
        raise UsageError(
            "the store would be copied onto itself", fix="give --to another store's URL"
        )
    if target.records.exists() and target.records.profiles():
        raise UsageError(
            f"{target_name} already holds profiles; a copy goes into an empty store only, so "
            "two stores are never merged by accident",
            fix="copy into a new database (createdb NAME) or an empty sqlite:///PATH",
        )
    source.unlock()
    old = source._get_cipher()
    target.unlock(create=True)
    if target.key_source() != source.key_source():
        raise UsageError(
            f"{target_name} is keyed by {target.key_source()}, the source by "
            f"{source.key_source()}; a copy keeps the key source",
            fix="copy into an empty store, with the source's key settings in the environment",
        )
    new = target._get_cipher()
    profiles = source.records.profiles()
    tokens = [t for t in (source.records.token(p.name) for p in profiles) if t is not None]
    events = list(reversed(source.records.events(None, (), MAX_EVENTS)))
    default = source.records.meta().get(DEFAULT_PROFILE)
    with target.records.write("copy the store", create=True) as tx:
        for row in profiles:
            tx.put_profile(_reseal_profile(row, old, new))
        for tok in tokens:
            tx.put_token(_reseal_token(tok, old, new))
        for event in events:
            tx.copy_event(event)
        if default:
            tx.set_meta({DEFAULT_PROFILE: default})
    return Copied(len(profiles), len(tokens), len(events))


def _reseal_profile(row: ProfileRow, old: Cipher, new: Cipher) -> ProfileRow:
    secret = old.open(row.secret, secret_ad(row), what="client secret")
    older = None
    if row.old_secret is not None:
        plain = old.open(row.old_secret, secret_ad(row, field=OLD_SECRET), what="client secret")
        older = new.seal(plain, secret_ad(row, field=OLD_SECRET))
    return replace(row, secret=new.seal(secret, secret_ad(row)), old_secret=older)


def _reseal_token(row: TokenRow, old: Cipher, new: Cipher) -> TokenRow:
    rec = row.record
    access_ad = token_ad(rec.profile, "access_token", rec.access_expires_at)
    access = old.open(row.access_token, access_ad, what="access token")
    refresh_ct = None
    refresh_fp = None
    if row.refresh_token is not None:
        refresh_ad = token_ad(rec.profile, "refresh_token", rec.refresh_expires_at)
        refresh = old.open(row.refresh_token, refresh_ad, what="refresh token")
        refresh_ct = new.seal(refresh, refresh_ad)
        refresh_fp = new.fingerprint(refresh)
    copy = rec.copy
    if copy.refresh_fp is not None:
        # The recorder holds the current refresh token (its fingerprint matches) or an older one.
        same = copy.refresh_fp == rec.refresh_fp
        copy = replace(copy, refresh_fp=refresh_fp if same else "before-copy")
    record = replace(rec, access_fp=new.fingerprint(access), refresh_fp=refresh_fp, copy=copy)
    return TokenRow(record, new.seal(access, access_ad), refresh_ct)
