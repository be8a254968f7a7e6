"""Secret references. A connector never reads a secret value: it writes
``{{secret:NAME}}`` where the value belongs (a header, a token-request body)
and Ward substitutes it when the request matches a grant of the manifest
bound to that secret."""


def secret_ref(name: str) -> str:
    """The reference Ward replaces with the stored secret ``name``
    (``secret_ref("api_token")`` -> ``{{secret:api_token}}``)."""
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"secret name {name!r} must be letters, digits, _ or -")
    return "{{secret:" + name + "}}"


def bearer(name: str) -> str:
    """An ``Authorization`` value ``Bearer {{secret:NAME}}``."""
    return "Bearer " + secret_ref(name)
