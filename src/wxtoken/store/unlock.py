"""Unlocking the store: the key negotiated once per process from the store's recorded source.

A new store gets its key here (serialised so racing first commands agree on one), an existing
one opens with the source it recorded (a wrong one is named), and a store sealed in an older
layout is re-sealed once, in one transaction.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

from .._local import Settings
from ..errors import KeySourceError, NoTokens
from .binding import secret_ad
from .cipher import CURRENT_LAYOUT, Cipher, keycheck_layout, make_keycheck
from .keys import existing_store_key, new_store_key, wrong_key
from .records import FIRST_PROFILE, RecordStore


def no_profiles() -> NoTokens:
    return NoTokens("the store has no profiles yet", fix=FIRST_PROFILE)


class StoreKey:
    """The store's key: negotiated on first use, then kept for the life of the process."""

    def __init__(
        self,
        records: RecordStore,
        settings: Settings,
        prompt: Callable[[str, bool], str] | None = None,
    ):
        self.records = records
        self.settings = settings
        self._prompt = prompt
        self._cipher: Cipher | None = None
        self._cipher_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"StoreKey({self.records!r})"

    def cipher(self, create: bool = False) -> Cipher:
        """The key as a cipher, negotiated on first use (`create`: make one for a new store)."""
        if self._cipher is not None:
            return self._cipher
        with self._cipher_lock:
            if self._cipher is None:
                self._cipher = self._negotiate(create)
            return self._cipher

    def _negotiate(self, create: bool) -> Cipher:
        meta = self.records.meta()
        if "key_source" not in meta:
            if not create:
                raise no_profiles()
            won = self._create_key()
            if won is not None:
                return won
            meta = self.records.meta()
        key = existing_store_key(self.settings, meta, meta["store_id"], self._prompt)
        cipher = Cipher(key)
        layout = keycheck_layout(cipher, meta.get("keycheck", ""))
        if layout is None:
            raise wrong_key(meta["key_source"])
        if layout < CURRENT_LAYOUT:
            self._upgrade_layout(cipher, layout)
        return cipher

    def _create_key(self) -> Cipher | None:
        """Create the store's key, or None if another process created one first.

        The key is saved (keyring) and recorded inside one write transaction, which serialises
        racing first commands: the loser finds the winner's key and saves nothing. A keyring
        key is then read back and compared, so what the store uses is what the keyring holds.
        """
        decision = new_store_key(self.settings, self._prompt)
        cipher = Cipher(decision.key)
        with self.records.write("record its key source", create=True) as tx:
            meta = tx.meta()
            if "key_source" in meta:
                return None
            decision.save(meta["store_id"])
            tx.set_meta(dict(decision.new_meta, keycheck=make_keycheck(cipher)))
            tx.event(None, "store_created", {"key_source": decision.source})
            store_id = meta["store_id"]
        if decision.source == "keyring":
            stored = existing_store_key(self.settings, self.records.meta(), store_id, None)
            if stored != decision.key:
                raise KeySourceError(
                    "the OS keyring did not keep the store's new key",
                    fix="check the keyring, or use WXTOKEN_PASSPHRASE or WXTOKEN_KEY_FILE",
                )
        return cipher

    def _upgrade_layout(self, cipher: Cipher, layout: int) -> None:
        """Re-seal every client secret in the current layout, and say so in the key check, in
        one transaction: a row is never left behind in the old, weaker layout."""
        with self.records.write("upgrade its sealing") as tx:
            if keycheck_layout(cipher, tx.meta().get("keycheck", "")) != layout:
                return  # another process upgraded it meanwhile
            for row in tx.profiles():
                secret = cipher.open(row.secret, secret_ad(row, layout), what="client secret")
                tx.put_profile(replace(row, secret=cipher.seal(secret, secret_ad(row))))
            tx.set_meta({"keycheck": make_keycheck(cipher)})
            tx.event(None, "store_upgraded", {"sealing": CURRENT_LAYOUT})
