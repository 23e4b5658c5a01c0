"""Is this string a credential? Our own patterns plus detect-secrets' detectors.

detect-secrets (Yelp) knows the shapes of tokens from many providers (AWS, Azure, GitHub,
GitLab, Slack, Stripe, Twilio, SendGrid, JWTs, private keys, ...). Its entropy and keyword
detectors are left out: the analysis decides from a string's name (``api_key = "..."``) itself,
and entropy alone flags column names and hashes. Pure: strings in, findings out.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from promote.analysis import tables

__all__ = ["SecretLiteral", "looks_secret", "secret_kind", "secret_literals"]

# detect-secrets detectors we do not use (see the module docstring).
_UNUSED_DETECTORS = frozenset(
    {
        "Base64 High Entropy String",
        "Hex High Entropy String",
        "Secret Keyword",
        "Public IP (ipv4)",
        "Basic Auth Credentials",  # tables.CREDENTIALS_URL, which knows placeholders
    }
)


@dataclass(frozen=True)
class SecretLiteral:
    """A string literal in the code that holds a credential."""

    node: ast.Constant
    name: str  # what the code calls it (`api_key`, a dict key, a keyword) or what it is
    kind: str  # e.g. "a GitHub token", "a connection string with a password"
    in_fstring: bool = False  # part of an f-string: cannot be replaced by an expression


def secret_kind(text: str) -> str | None:
    """What kind of credential ``text`` holds, if any (``"an AWS access key"``)."""
    for kind, pattern in tables.SECRET_PATTERNS:
        if pattern.search(text):
            return kind
    url = tables.CREDENTIALS_URL.search(text)
    if url and not tables.PLACEHOLDER.search(url.group(3)):
        return "a connection string with a password"
    found = _detect(text)
    return f"a {found}" if found else None


def looks_secret(value: str) -> bool:
    """A value named like a secret (``password = value``) that is not a placeholder."""
    return (
        len(value) >= 8
        and " " not in value.strip()
        and not tables.ENV_VAR_NAME.match(value)
        and not tables.PLACEHOLDER.search(value)
    )


def secret_literals(nodes: list[ast.AST]) -> Iterator[SecretLiteral]:
    """The credentials among the string literals under ``nodes`` (a statement's walk).

    A string counts when its name says secret (``token="..."``, ``{"password": "..."}``,
    ``API_KEY = "..."``) and its value is not a placeholder, or when its shape alone says so.
    """
    named: dict[int, str] = {}
    for node in nodes:
        for name, value in _named(node):
            if tables.SECRET_NAME.search(name) and looks_secret(str(value.value)):
                named[id(value)] = name
    in_fstring = {
        id(part)
        for node in nodes
        if isinstance(node, ast.JoinedStr)
        for part in node.values
        if isinstance(part, ast.Constant)
    }
    for node in nodes:
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
            continue
        if id(node) in named:
            kind = secret_kind(node.value) or f"a {named[id(node)]}"
            yield SecretLiteral(node, named[id(node)], kind, id(node) in in_fstring)
            continue
        shape = secret_kind(node.value)
        if shape:
            url = tables.CREDENTIALS_URL.search(node.value)
            name = f"{url.group(1)}_url" if url else _name_for(shape)
            yield SecretLiteral(node, name, shape, id(node) in in_fstring)


def _named(node: ast.AST) -> Iterator[tuple[str, ast.Constant]]:
    """(name, string) for ``name = "..."``, ``f(name="...")`` and ``{"name": "..."}``."""
    if isinstance(node, ast.Assign | ast.AnnAssign) and _is_str(node.value):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        for target in targets:
            name = _target_name(target)
            if name:
                yield name, node.value  # type: ignore[misc]
    elif isinstance(node, ast.Call):
        for keyword in node.keywords:
            if keyword.arg and _is_str(keyword.value):
                yield keyword.arg, keyword.value  # type: ignore[misc]
    elif isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values, strict=True):
            if _is_str(key) and _is_str(value):
                yield key.value, value  # type: ignore[union-attr,misc]


def _is_str(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _target_name(target: ast.expr) -> str:
    if isinstance(target, ast.Name):
        return target.id
    if isinstance(target, ast.Attribute):  # stripe.api_key = "..."
        base = target.value.id if isinstance(target.value, ast.Name) else ""
        return f"{base}_{target.attr}" if base else target.attr
    if isinstance(target, ast.Subscript) and _is_str(target.slice):
        return str(target.slice.value)  # type: ignore[attr-defined]
    return ""


def _name_for(kind: str) -> str:
    """``"an AWS access key"`` → ``aws_access_key``: a setting name for an unnamed secret."""
    words = [w for w in kind.lower().replace("-", " ").split() if w not in {"a", "an", "with"}]
    return "_".join("".join(c for c in w if c.isalnum()) for w in words)[:40] or "secret"


def _detect(text: str) -> str | None:
    for line in text.splitlines() or [text]:
        for pattern, name in _detectors():
            if pattern.search(line):
                return name
    return None


@functools.cache
def _detectors() -> tuple[tuple[re.Pattern[str], str], ...]:
    """The regular expressions of detect-secrets' provider detectors, collected once.

    Calling its scanner per string costs milliseconds (it sets up its plugins each time); the
    detectors' own ``denylist`` patterns are what decides, so we run those directly.
    """
    try:
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    except ImportError:  # pragma: no cover - a declared dependency
        return ()
    found = []
    detectors: dict[str, object] = dict(get_mapping_from_secret_type_to_class())
    for name, plugin in sorted(detectors.items()):
        if name in _UNUSED_DETECTORS:
            continue
        for pattern in getattr(plugin, "denylist", ()):
            found.append((pattern, str(name)))
    return tuple(found)
