"""The API key: from the environment, else from the platform keyring; never written anywhere."""

from __future__ import annotations

KEYRING_SERVICE = "deskpilot"
KEYRING_USER = "ANTHROPIC_API_KEY"


def api_key() -> str | None:
    """ANTHROPIC_API_KEY from the environment, or the keyring's entry (service "deskpilot"); None if neither."""
    from agent.vault import getenv, remember

    key = getenv("ANTHROPIC_API_KEY")
    if key:
        return key
    try:
        import keyring
    except ImportError:
        return None
    try:
        key = keyring.get_password(KEYRING_SERVICE, KEYRING_USER)
    except Exception:  # no keyring backend on this machine
        return None
    remember(key)  # redacted from tool output like a variable's value
    return key


def store_api_key(key: str) -> None:
    """Save the key in the platform keyring (the app's settings never hold it)."""
    import keyring

    keyring.set_password(KEYRING_SERVICE, KEYRING_USER, key)
