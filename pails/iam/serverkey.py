"""The server key: encrypts secrets at rest and signs session tokens.

From PAILS_SERVER_KEY (any string of at least 32 characters; every gateway sharing one metadata
database must be given the same), else generated once into DATA_DIR/server-key (mode 0600). Purpose
keys are derived from it with HKDF-SHA256, so one value serves both uses without reuse.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_FILE = "server-key"
MIN_KEY_CHARS = 32
_NONCE = 12


class ServerKeyError(ValueError):
    pass


def derive(master: str, purpose: str) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"pails-server-key", info=purpose.encode())
    return hkdf.derive(master.encode("utf-8"))


def load_or_create(data_dir: Path, configured: str | None) -> str:
    """The master key text: the configured one, else DATA_DIR/server-key (created if missing)."""
    if configured:
        if len(configured) < MIN_KEY_CHARS:
            raise ServerKeyError(f"PAILS_SERVER_KEY must have at least {MIN_KEY_CHARS} characters")
        return configured
    path = data_dir / KEY_FILE
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    text = secrets.token_urlsafe(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another worker won the race
        return path.read_text().strip()
    with os.fdopen(fd, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    return text


@dataclass(frozen=True)
class SecretBox:
    """AES-256-GCM with a random nonce; `context` (e.g. the access key id) is bound as associated
    data, so a ciphertext copied onto another row does not decrypt."""

    key: bytes = field(repr=False)

    def seal(self, plaintext: str, context: str) -> bytes:
        nonce = secrets.token_bytes(_NONCE)
        return nonce + AESGCM(self.key).encrypt(nonce, plaintext.encode("utf-8"), context.encode("utf-8"))

    def open(self, sealed: bytes, context: str) -> str:
        """Raises ServerKeyError when the data was sealed with another key (or altered)."""
        try:
            plain = AESGCM(self.key).decrypt(sealed[:_NONCE], sealed[_NONCE:], context.encode("utf-8"))
        except (InvalidTag, ValueError):
            raise ServerKeyError("cannot decrypt: wrong server key or altered data") from None
        return plain.decode("utf-8")

    def seal_text(self, plaintext: str, context: str) -> str:
        return base64.urlsafe_b64encode(self.seal(plaintext, context)).decode("ascii").rstrip("=")

    def open_text(self, sealed: str, context: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
        except ValueError:
            raise ServerKeyError("malformed sealed text") from None
        return self.open(raw, context)


@dataclass(frozen=True)
class ServerKeys:
    secrets: SecretBox
    """Secrets at rest (access key secrets) and inside session tokens."""
    tokens: bytes = field(repr=False)
    """HS256 key of session tokens (JWT)."""

    @classmethod
    def from_master(cls, master: str) -> ServerKeys:
        return cls(SecretBox(derive(master, "secrets-at-rest")), derive(master, "session-tokens"))
