"""Secrets: generated tokens, their hashes, passwords, and encryption at rest.

Tokens (API keys, management keys, SCIM tokens) carry 256 bits of entropy,
so a single SHA-256 is a safe and fast lookup hash; passwords are low-entropy
and get argon2id. Provider credentials must be readable again to call the
upstream, so they are encrypted (Fernet: AES-128-CBC + HMAC) rather than hashed.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.fernet import Fernet, InvalidToken

_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_hasher = PasswordHasher()


def new_token(prefix: str, length: int = 43) -> str:
    return prefix + "".join(secrets.choice(_B62) for _ in range(length))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_hint(token: str) -> str:
    """What a list shows of a token: its prefix and last four characters."""
    head = token[: token.index("_", 4) + 1] if token.count("_") >= 2 else token[:3]
    return f"{head}...{token[-4:]}"


def masked_hint(secret: str) -> str:
    """`sk-...abcd` for an upstream key: enough to recognise, useless to steal."""
    head = secret[:3] if len(secret) > 10 else ""
    return f"{head}...{secret[-4:]}" if len(secret) >= 8 else "..."


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def derive_fernet_key(secret_key: str) -> bytes:
    return base64.urlsafe_b64encode(hashlib.sha256(secret_key.encode()).digest())


class Encryptor:
    def __init__(self, secret_key: str) -> None:
        self._fernet = Fernet(derive_fernet_key(secret_key))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("credential cannot be decrypted with the configured key") from exc
