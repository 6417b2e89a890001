"""How well `indexer.files.secret_scan` tells secrets from code, and what it costs per file.

Recall: a corpus of realistic-looking fake secrets, generated here from random bytes each
run (never real ones, never written to the repository): private keys of every common
envelope, cloud credential files, tokens of the formats the scanner knows, and config files
of many syntaxes with a random password assigned. False positives: ordinary source files
(every .py in this venv's site-packages and /usr/lib/python3*, .go under /usr/share/gocode
and /usr/lib/go*, and this repository's tracked files); each one the scanner flags is
counted, and the worst are listed so they can be read.

    python tests/bench/bench_secret_scan.py [--per-kind 40] [--limit-files 0] [--show 25]
"""

from __future__ import annotations

import argparse
import base64
import glob
import json
import os
import random
import secrets
import statistics
import string
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from indexer.files.secret_scan import SCAN_CHARS, scan  # noqa: E402

ALNUM = string.ascii_letters + string.digits


def rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def b64(n: int) -> str:
    return base64.b64encode(secrets.token_bytes(n)).decode()


def wrap(text: str, width: int = 64) -> str:
    return "\n".join(text[i : i + width] for i in range(0, len(text), width))


def pem(label: str, n: int = 900, headers: str = "") -> str:
    return f"-----BEGIN {label}-----\n{headers}{wrap(b64(n))}\n-----END {label}-----\n"


def password() -> str:
    """What people and generators put in config: urlsafe tokens, or mixed symbols."""
    kind = random.randrange(3)
    if kind == 0:
        return secrets.token_urlsafe(random.randint(9, 24))
    if kind == 1:
        return rand(random.randint(10, 24), ALNUM + "!#%^&*-_+=")
    return secrets.token_hex(random.randint(8, 24))


def filler() -> str:
    return random.choice(["# settings for the staging stack\n", "", "region = \"eu-west-1\"\n",
                          "log_level: info\nreplicas: 3\n", "[database]\nhost = db.internal\n"])


# kind -> (file name, content) maker
CORPUS: dict[str, Callable[[], tuple[str, str]]] = {
    "PEM RSA key": lambda: ("conf/server_key.txt", pem("RSA PRIVATE KEY")),
    "PEM EC key": lambda: ("certs/ec", pem("EC PRIVATE KEY", 120)),
    "PKCS#8 key": lambda: ("conf/tls", pem("PRIVATE KEY", 1200)),
    "encrypted PEM": lambda: ("conf/legacy_key", pem("RSA PRIVATE KEY", 1200,
                                                     "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,"
                                                     + secrets.token_hex(16).upper() + "\n\n")),
    "OpenSSH key": lambda: ("conf/deploy_key", pem("OPENSSH PRIVATE KEY", 400)),
    "PGP private key": lambda: ("keys/release", pem("PGP PRIVATE KEY BLOCK", 1500, "Version: GnuPG v2\n\n")),
    "PuTTY key": lambda: ("keys/ci.ppk.txt", "PuTTY-User-Key-File-2: ssh-rsa\nEncryption: none\n"
                          f"Comment: ci\nPublic-Lines: 6\n{wrap(b64(270))}\nPrivate-Lines: 14\n{wrap(b64(600))}\n"),
    "PEM key in code": lambda: ("tests/test_tls.py", "KEY = (\n" + "".join(
        f'    "{line}\\n"\n' for line in pem("PRIVATE KEY").splitlines()) + ")\n"),
    "GCP service account": lambda: ("conf/service-account.json", json.dumps({
        "type": "service_account", "project_id": f"proj-{rand(6).lower()}",
        "private_key_id": secrets.token_hex(20), "private_key": pem("PRIVATE KEY", 1200),
        "client_email": "svc@proj.iam.gserviceaccount.com", "client_id": rand(21, string.digits),
    }, indent=2)),
    "AWS credentials file": lambda: ("conf/aws.ini", f"[default]\naws_access_key_id = AKIA{rand(16, string.ascii_uppercase + string.digits)}\n"
                                     f"aws_secret_access_key = {rand(40, ALNUM + '/+')}\n"),
    "AWS key in code": lambda: ("deploy/upload.py", "import boto3\n\ns3 = boto3.client(\n    's3',\n"
                                f"    aws_access_key_id='AKIA{rand(16, string.ascii_uppercase + string.digits)}',\n"
                                f"    aws_secret_access_key='{rand(40, ALNUM + '/+')}',\n)\n"),
    "Azure connection string": lambda: ("conf/storage.txt", "DefaultEndpointsProtocol=https;AccountName=acct;"
                                        f"AccountKey={b64(64)};EndpointSuffix=core.windows.net\n"),
    "GitHub token": lambda: ("scripts/release.sh", f"#!/bin/sh\nexport GH_TOKEN=ghp_{rand(36)}\ngh release create\n"),
    "GitHub fine-grained": lambda: ("ci/notes.md", f"use github_pat_{rand(22)}_{rand(59)} for the mirror\n"),
    "GitLab token": lambda: ("ci/gitlab.cfg", f"url = https://gitlab.example.org\nprivate = glpat-{rand(20, ALNUM + '-_')}\n"),
    "Slack bot token": lambda: ("bot/config.py", f'SLACK = "xoxb-{rand(12, string.digits)}-{rand(13, string.digits)}-{rand(24)}"\n'),
    "Slack webhook": lambda: ("alerts.yml", f"webhook: https://hooks.slack.com/services/T{rand(8, string.ascii_uppercase + string.digits)}"
                              f"/B{rand(10, string.ascii_uppercase + string.digits)}/{rand(24)}\n"),
    "Stripe key": lambda: ("billing/settings.js", f"module.exports = {{ stripe: 'sk_live_{rand(24)}' }};\n"),
    "Google API key": lambda: ("web/maps.ts", f"const MAPS = \"AIza{rand(35, ALNUM + '-_')}\";\n"),
    "OpenAI key": lambda: ("notebooks/run.py", f'client = OpenAI(api_key="sk-proj-{rand(48, ALNUM + "-_")}")\n'),
    "Anthropic key": lambda: ("tools/ask.go", f'const key = "sk-ant-api03-{rand(93, ALNUM + "-_")}AA"\n'),
    "npm token": lambda: ("ci/npmrc.txt", f"//registry.npmjs.org/:_authToken=npm_{rand(36)}\n"),
    "PyPI token": lambda: ("ci/upload.cfg", f"[pypi]\nusername = __token__\npassword = pypi-AgEIcHlwaS5vcmc{rand(60, ALNUM + '-_')}\n"),
    "SendGrid key": lambda: ("mail/send.rb", f"SENDGRID = 'SG.{rand(22, ALNUM + '-_')}.{rand(43, ALNUM + '-_')}'\n"),
    "Hugging Face token": lambda: ("ml/pull.sh", f"huggingface-cli login --token hf_{rand(34)}\n"),
    "JWT": lambda: ("tests/fixtures/session.txt", "Authorization: Bearer " + ".".join(
        base64.urlsafe_b64encode(p).decode().rstrip("=") for p in (
            b'{"alg":"HS256","typ":"JWT"}', json.dumps({"sub": rand(8), "iat": 1700000000}).encode(),
            secrets.token_bytes(32))) + "\n"),
    ".env password": lambda: ("deploy/prod.env", f"{filler()}DB_HOST=db\nDB_PASSWORD={password()}\n"),
    "tfvars password": lambda: ("conf/prod.tfvars", f'{filler()}db_password = "{password()}"\n'),
    "yaml password": lambda: ("k8s/values.yaml", f"{filler()}postgres:\n  user: app\n  password: {password()}\n"),
    "yaml quoted secret": lambda: ("k8s/secret.yml", f"{filler()}stringData:\n  apiSecret: \"{password()}\"\n"),
    "properties password": lambda: ("src/main/resources/application.properties",
                                    f"spring.datasource.url=jdbc:postgresql://db/app\nspring.datasource.password={password()}\n"),
    "ini password": lambda: ("conf/app.ini", f"[smtp]\nuser = mailer\npasswd = {password()}\n"),
    "toml token": lambda: ("conf/app.toml", f'{filler()}[github]\ntoken = "{password()}"\n'),
    "json apiKey": lambda: ("web/config.json", json.dumps({"endpoint": "https://api.internal", "apiKey": password()}, indent=2)),
    "xml-ish json secret": lambda: ("conf/appsettings.json", json.dumps({"AzureAd": {"ClientSecret": password()}}, indent=2)),
    "python SECRET_KEY": lambda: ("app/settings.py", f"DEBUG = False\nSECRET_KEY = '{password()}'\n"),
    "JS apiToken": lambda: ("src/client.js", f"const apiToken = \"{password()}\";\nfetch(url, {{headers: {{t: apiToken}}}});\n"),
    "Go password": lambda: ("cmd/seed/main.go", f'package main\n\nfunc main() {{\n\tpassword := "{password()}"\n\tconnect(password)\n}}\n'),
    "URL with password": lambda: ("conf/db.txt", f"DATABASE_URL=postgres://app:{password()}@db.internal:5432/app\n"),
    "compose env": lambda: ("docker-compose.yml", f"services:\n  db:\n    environment:\n      - POSTGRES_PASSWORD={password()}\n"),
    "shell export": lambda: ("scripts/env.sh", f"export API_KEY={password()}\n"),
}


def recall(per_kind: int) -> tuple[int, int, Counter[str]]:
    found = total = 0
    missed: Counter[str] = Counter()
    for kind, make in CORPUS.items():
        for _ in range(per_kind):
            name, text = make()
            total += 1
            if scan(text, name) is not None:
                found += 1
            else:
                missed[kind] += 1
    return found, total, missed


def source_files(limit: int) -> Iterator[Path]:
    seen = 0
    roots: list[tuple[str, str]] = [(sp, "*.py") for sp in glob.glob(str(REPO / ".venv/lib/python3*/site-packages"))]
    roots += [(d, "*.py") for d in glob.glob("/usr/lib/python3*") if os.path.isdir(d)]
    roots += [(d, "*.go") for d in ("/usr/share/gocode", *glob.glob("/usr/lib/go*")) if os.path.isdir(d)]
    for base, pattern in roots:
        for path in Path(base).rglob(pattern):
            if path.is_file() and not path.is_symlink():
                yield path
                seen += 1
                if limit and seen >= limit:
                    return
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files"], capture_output=True, text=True).stdout
    for rel in tracked.splitlines():
        path = REPO / rel
        if path.is_file():
            yield path


def false_positives(limit: int, show: int) -> None:
    scanned = flagged = 0
    costs: list[float] = []
    bytes_scanned = 0
    hits: list[tuple[str, str]] = []
    kinds: Counter[str] = Counter()
    seen_real: set[str] = set()
    for path in source_files(limit):
        real = os.path.realpath(path)
        if real in seen_real:
            continue
        seen_real.add(real)
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        scanned += 1
        bytes_scanned += min(len(text), SCAN_CHARS)
        started = time.perf_counter()
        finding = scan(text, path.name)
        costs.append(time.perf_counter() - started)
        if finding is not None:
            flagged += 1
            kind = finding.kind if not finding.kind.startswith("a random") else "assignment"
            kinds[kind] += 1
            hits.append((str(path), str(finding)))
    costs.sort()
    print(f"\nfalse positives: {flagged} of {scanned} source files flagged ({100 * flagged / max(scanned, 1):.2f}%)")
    print("  by kind: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
    print(f"  cost per file: mean {statistics.fmean(costs) * 1e6:.0f} µs, p50 {costs[len(costs) // 2] * 1e6:.0f} µs, "
          f"p99 {costs[int(len(costs) * 0.99)] * 1e6:.0f} µs, max {costs[-1] * 1e3:.1f} ms; "
          f"{bytes_scanned / 2**20 / sum(costs):.0f} MiB/s over {bytes_scanned / 2**20:.0f} MiB scanned")
    for shown, why in hits[:show]:
        print(f"    {shown}: {why}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=40, help="fake secrets generated per kind")
    parser.add_argument("--limit-files", type=int, default=0, help="stop after this many system files (0: all)")
    parser.add_argument("--show", type=int, default=25, help="flagged source files to list")
    args = parser.parse_args()
    found, total, missed = recall(args.per_kind)
    print(f"recall: {found} of {total} fake secrets found ({100 * found / total:.1f}%), "
          f"{len(CORPUS)} kinds x {args.per_kind}")
    for kind, n in missed.most_common():
        print(f"  missed {n:3d} x {kind}")
    false_positives(args.limit_files, args.show)


if __name__ == "__main__":
    main()
