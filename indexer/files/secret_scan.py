"""Recognise a file that holds a credential by what is in it, not only by its name.

An index is a copy of what it reads, and `context` prints it back: a private key in
`conf/deploy_key` or a password in `prod.tfvars` must never get in. `discover` already
refuses secret-bearing names; this module looks at the first `SCAN_CHARS` characters of a
file's text for

- private-key blocks (PEM, OpenSSH, PGP, PuTTY), also inside JSON strings;
- cloud credentials: a Google service-account key, AWS and Azure account keys;
- tokens with a recognisable format (GitHub, GitLab, Slack, Stripe, Google, OpenAI,
  Anthropic, npm, PyPI, SendGrid, Hugging Face, JWTs) and passwords inside URLs;
- a random-looking value assigned to a name like password, secret, token or api_key.

Hand-written on purpose (this is core to the product and small): each format is one regex
that starts with a literal, tried only when its literal is in the text, so ordinary files
cost a few substring searches. Random-looking means mixed letters and digits or symbols
with high Shannon entropy, and not a placeholder, a variable or a word list; values in
code count only when they are string literals. A finding names the kind and the line,
never the value.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from itertools import pairwise

__all__ = ["SCAN_CHARS", "Finding", "looks_random", "scan"]

#: Only this much of a file is looked at: credentials sit at the top of the files that
#: hold them, and indexing must stay fast.
SCAN_CHARS = 64 * 1024


@dataclass(frozen=True)
class Finding:
    """What kind of secret was seen, and on which line (1-based)."""

    kind: str
    line: int

    def __str__(self) -> str:
        return f"{self.kind} on line {self.line}"


_B64 = r"A-Za-z0-9+/"
# (kind, regex, group holding the random part (None: a structure, nothing to check), what
# must come just before the match).
# Every regex starts with a literal: `re` then finds candidates at substring-search speed
# (a leading `\b` or character class would make it try every position). Word boundaries
# are checked in `_formats` instead.
_FORMATS: tuple[tuple[str, re.Pattern[str], int | None, tuple[str, ...]], ...] = tuple(
    (kind, re.compile(rx), group, lead)
    for kind, rx, group, lead in (
        ("Google service-account key", r'"type"\s*:\s*"service_account"', None, ()),
        ("private key",
         rf"-----BEGIN (?:[A-Z0-9]+ ){{0,3}}PRIVATE KEY(?: BLOCK)?-----(?=[\s\S]{{0,300}}?[{_B64}]{{48}})", None, ()),
        ("PuTTY private key", r"PuTTY-User-Key-File-\d: [\w-]+\s", None, ()),
        ("AWS access key id", r"(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}(?![0-9A-Za-z])", 0, ()),
        ("Azure storage account key", rf"AccountKey=([{_B64}]{{80,90}}={{0,2}})", 1, ()),
        ("GitHub token", r"gh[pousr]_[A-Za-z0-9]{36,255}(?!\w)", 0, ()),
        ("GitHub token", r"github_pat_[A-Za-z0-9_]{40,255}", 0, ()),
        ("GitLab token", r"gl(?:pat|dt|rt|ptt|cbt|oas|soat)-[A-Za-z0-9_-]{20,}", 0, ()),
        ("Slack token", r"xox[abposre]-[A-Za-z0-9-]{10,}", 0, ()),
        ("Slack webhook", r"hooks\.slack\.com/services/(T[A-Z0-9]+/B[A-Z0-9]+/[A-Za-z0-9]{16,})", 1, ()),
        ("Stripe key", r"k_(?:live|test)_[A-Za-z0-9]{20,}", 0, ("s", "r")),
        ("Stripe webhook secret", r"whsec_[A-Za-z0-9]{24,}", 0, ()),
        ("Google API key", r"AIza[0-9A-Za-z_-]{35}", 0, ()),
        ("OpenAI key", r"sk-(?:proj-[A-Za-z0-9_-]{40,}|[A-Za-z0-9_-]{0,60}T3BlbkFJ[A-Za-z0-9_-]{16,})", 0, ()),
        ("Anthropic key", r"sk-ant-[a-z]+\d\d-[A-Za-z0-9_-]{40,}", 0, ()),
        ("npm token", r"npm_[A-Za-z0-9]{36}(?!\w)", 0, ()),
        ("PyPI token", r"pypi-AgE[A-Za-z0-9_-]{50,}", 0, ()),
        ("SendGrid key", r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}", 0, ()),
        ("Hugging Face token", r"hf_[A-Za-z0-9]{34,}(?!\w)", 0, ()),
        ("JSON Web Token", r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}", 0, ()),
        ("password in a URL", r"://[^\s/:@'\"]{1,64}:([^\s/@'\"]{8,128})@[\w.-]+", 1, ()),
    )
)

#: Words that make a name a credential's (case-insensitive, inside a longer name: db_password,
#: dbPassword, AWS_SECRET_ACCESS_KEY, api-token, client.secret). "key" alone is too common,
#: so a name found through it must also contain one of `_KEY_NAMES`.
_KEY_WORDS = ("pass", "pwd", "secret", "token", "credential", "key")
_KEY_NAMES = ("apikey", "api_key", "api-key", "accesskey", "access_key", "access-key", "private_key",
              "privatekey", "auth_key", "authkey", "secret", "token")
_IDENT = re.compile(r"[\w.\-]*")
# What follows the name: an assignment of a string literal, or (in config files) a bare value.
_VALUE = re.compile(
    r"""(?x)
    ["']?\]?                                   # the end of a quoted JSON key or a subscript
    (?:[ \t]*:[ \t]*[A-Za-z_][\w\[\],\ .|]*?(?=[ \t]*=))?   # a type: `password: str = ...`
    [ \t]*(?::=|=>|=|:)[ \t]*(?!=[\s"'`]|=$)     # not a comparison (==); `P==x` in .env is a value
    (?:
        (?:[rbuf]{1,2})?(?P<q>["'`])(?P<quoted>[^"'`\s]{8,200})(?P=q)
      | (?P<bare>[^\s"'`,;]{8,200})(?=$|[\s,;])
    )""",
    re.I,
)
# Files where an unquoted value is a value (in code it is an expression: a variable, a call).
_CONFIG_SUFFIXES = (".env", ".tfvars", ".hcl", ".tf", ".properties", ".ini", ".cfg", ".conf",
                    ".config", ".toml", ".yaml", ".yml", ".json", ".xml", ".sh", ".bash", ".zsh",
                    ".envrc", ".txt", ".cnf", ".secrets")
# Values that are obviously not a real credential.
_PLACEHOLDERS = ("example", "sample", "dummy", "placeholder", "changeme", "change_me", "your",
                 "redacted", "xxxx", "****", "...", "\u2026", "todo", "fixme", "secret", "password",
                 "passwd", "token", "replace", "insert", "enter_", "foobar", "<", ">", "{", "}",
                 "(", ")", "[", "]", "0000000")
_NOT_A_VALUE_START = tuple("$@/.~\\")
_SEPARATORS = re.compile(r"[-_.\s/:@,+=]+")
_HEX = frozenset("0123456789abcdefABCDEF")


def entropy(value: str) -> float:
    """Shannon entropy in bits per character."""
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values()) if n else 0.0


def _class(c: str) -> int:
    return 0 if c.islower() else 1 if c.isupper() else 2 if c.isdigit() else 3


def _wordy(value: str) -> bool:
    """Identifiers and word lists (X-Auth-Token, strong_close, CustomPrivateKeySign,
    V1LocalObjectReference, not_exists_1123): words of one case, or words whose case and
    digits change only where a word starts, and that have vowels. In a random value the
    character class changes at about every other character (an upper-case letter followed
    by lower-case ones is the start of a word, not a change), and under a quarter of the
    letters are vowels."""
    parts = [p for p in _SEPARATORS.split(value) if p]
    if all(p.isalpha() and (p.islower() or p.isupper() or p.istitle()) for p in parts):
        return True
    joined = "".join(parts)
    if len(joined) < 2:
        return True
    changes = sum(_class(a) != _class(b) and not (_class(a) == 1 and _class(b) == 0)
                  for a, b in pairwise(joined))
    letters = [c for c in joined.lower() if c.isalpha()]
    vowels = sum(c in "aeiou" for c in letters) / max(len(letters), 1)
    return changes / (len(joined) - 1) < 0.25 and vowels >= 0.28


def looks_random(value: str, min_bits: float = 3.3) -> bool:
    """A value that looks generated rather than written: a password or key, not a word.

    `min_bits`: the entropy per character asked of a long value (shorter ones need less)."""
    if len(value) < 8 or value.isdigit() or len(set(value)) < 5:
        return False
    lower = value.lower()
    if value.startswith(_NOT_A_VALUE_START) or "://" in value or any(p in lower for p in _PLACEHOLDERS):
        return False
    if not any(c.isalpha() for c in value):
        return False
    if _HEX.issuperset(value):  # hex keys: 16 symbols cap the entropy lower
        return entropy(value) >= min(min_bits - 0.6, math.log2(len(value)) - 1.5)
    if _wordy(value):
        return False
    # Distinct characters cap the entropy at log2(len): short values need less.
    return entropy(value) >= min(min_bits, math.log2(len(value)) - 0.7)


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _token_ok(token: str) -> bool:
    """A format match that is not a documentation example or a run of one character."""
    lower = token.lower()
    return ("example" not in lower and "xxxxxx" not in lower and "000000" not in token
            and entropy(token) >= 3.0)


_GCP_KEY = re.compile(r'"private_key"\s*:\s*"')


def _url_password(value: str) -> bool:
    """Between `user:` and `@` nothing but a password goes: less randomness is asked."""
    return looks_random(value, 2.5)


def _formats(text: str) -> Finding | None:
    for kind, rx, group, lead in _FORMATS:
        for m in rx.finditer(text):
            begin = m.start()
            if lead:
                if not text.startswith(lead, begin - 1):
                    continue
                begin -= 1
            if kind != "password in a URL" and begin > 0 and (text[begin - 1].isalnum() or text[begin - 1] == "_"):
                continue  # inside a longer word
            if kind == "Google service-account key" and _GCP_KEY.search(text) is None:
                continue  # the key file's shape, not code that builds one
            ok = _url_password if kind == "password in a URL" else _token_ok
            if group is None or ok(m.group(group)):
                return Finding(kind, _line_of(text, begin))
    return None


def _assignments(text: str, config: bool) -> Finding | None:
    """A random-looking value assigned to a credential's name. Each occurrence of a key
    word is grown to the whole name around it, then what follows the name is matched."""
    lower = text.lower()
    done: set[int] = set()
    for word in _KEY_WORDS:
        pos = lower.find(word)
        while pos >= 0:
            m = _IDENT.match(text, pos)
            end = m.end() if m else pos + len(word)
            value = _VALUE.match(text, end) if end not in done else None
            done.add(end)
            if value is not None:
                literal = value.group("quoted") or (value.group("bare") if config else None)
                if literal and looks_random(literal):
                    start = pos
                    while start > 0 and pos - start < 80 and (text[start - 1].isalnum() or text[start - 1] in "_.-"):
                        start -= 1
                    name = text[start:end]
                    if word != "key" or any(k in name.lower() for k in _KEY_NAMES):
                        return Finding(f"a random-looking value assigned to {name[-60:]}", _line_of(text, pos))
            pos = lower.find(word, end)
    return None


def scan(text: str, name: str = "") -> Finding | None:
    """The first sign of a secret in the first `SCAN_CHARS` characters of `text`, or None.

    `name` (the file's name or path) tells config files, where unquoted values count,
    from code.
    """
    head = text[:SCAN_CHARS]
    lower_name = name.lower().rpartition("/")[2]
    config = "." not in lower_name or lower_name.endswith(_CONFIG_SUFFIXES) or lower_name.startswith(".env")
    return _formats(head) or _assignments(head, config)
