"""`teamIndex`: two working copies of one git repository, on different branches, share one
collection on a real Chroma server. Each only gets hits from its own files' content, and
the second embeds only what the first did not already store."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.core.settings import Settings
from indexer.workspace import Workspace
from tests.e2e.chroma_helpers import ChromaServer

pytestmark = pytest.mark.slow

FILES = {
    "geo/distance.py": '''
import math


def haversine_km(lat1, lon1, lat2, lon2):
    """Great-circle distance between two points on Earth in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def bounding_box(lat, lon, km):
    """A latitude/longitude box around a point, km on each side."""
    d = km / 111.0
    return lat - d, lon - d, lat + d, lon + d
''',
    "text/slug.py": '''
import re


def slugify(title):
    """Turn a blog post title into a lowercase url slug."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
''',
    "net/retry.py": '''
import random


def backoff_delays(base, cap, attempts):
    """Exponential backoff with random jitter, capped."""
    return [random.uniform(0, min(cap, base * 2 ** i)) for i in range(attempts)]
''',
    "store/cache.py": '''
class LruCache:
    """A least-recently-used cache with a fixed capacity."""

    def __init__(self, capacity):
        self.capacity = capacity
        self.items = {}

    def get(self, key):
        value = self.items.pop(key, None)
        if value is not None:
            self.items[key] = value
        return value
''',
}

# On the feature branch the retry helper becomes something else entirely.
FEATURE_RETRY = '''
import random


def backoff_delays(base, cap, attempts):
    """Exponential backoff with random jitter, capped."""
    return [random.uniform(0, min(cap, base * 2 ** i)) for i in range(attempts)]


def checksum_crc32_of_file(path):
    """Compute the CRC32 checksum of a file, reading it in blocks."""
    import zlib
    crc = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(65536), b""):
            crc = zlib.crc32(block, crc)
    return crc
'''


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   cwd=cwd, check=True, capture_output=True)


@pytest.fixture
def repos(tmp_path: Path) -> tuple[Path, Path]:
    """`main` and `feature` checked out in two clones of one repository."""
    origin = tmp_path / "origin"
    origin.mkdir()
    git(origin, "init", "-q", "-b", "main")
    for rel, text in FILES.items():
        (origin / rel).parent.mkdir(parents=True, exist_ok=True)
        (origin / rel).write_text(text.lstrip())
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "main")
    git(origin, "checkout", "-q", "-b", "feature")
    (origin / "net/retry.py").write_text(FEATURE_RETRY.lstrip())
    git(origin, "commit", "-q", "-am", "feature")
    git(origin, "checkout", "-q", "main")
    a, b = tmp_path / "alice", tmp_path / "bob"
    git(tmp_path, "clone", "-q", "-b", "main", str(origin), str(a))
    git(tmp_path, "clone", "-q", "-b", "feature", str(origin), str(b))
    return a, b


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ChromaServer]:
    srv = ChromaServer(tmp_path / "chroma-server").start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def embedder():  # type: ignore[no-untyped-def]
    from indexer.embed.llama import get_embedder

    return get_embedder(Settings())


def test_two_branches_share_one_collection_and_see_only_their_own(
    tmp_path: Path, repos: tuple[Path, Path], server: ChromaServer, embedder  # type: ignore[no-untyped-def]
) -> None:
    alice_root, bob_root = repos

    def machine(root: Path, name: str) -> Workspace:
        s = Settings(state_dir=tmp_path / f"state-{name}", chroma_url=server.url, team_index="core team")
        return Workspace(root, s, embedder=embedder)

    with machine(alice_root, "alice") as alice, machine(bob_root, "bob") as bob:
        a_sum = alice.index()
        assert a_sum.errors == [] and a_sum.chunks_embedded > 0
        name, after_alice = next(iter(server.collections().items()))
        assert name.startswith("forge-team-core-team-")

        b_sum = bob.index()
        assert len(server.collections()) == 1  # one shared collection
        # Bob embeds only the text Alice never had (the new function); everything else,
        # even the unchanged function of the changed file, is taken from the server.
        bob_texts = bob.store.sql.conn.execute("SELECT count(DISTINCT text_hash) FROM chunks").fetchone()[0]
        new_texts = bob.store.sql.conn.execute(
            "SELECT count(DISTINCT text_hash) FROM chunks WHERE symbol LIKE '%checksum_crc32%'").fetchone()[0]
        assert new_texts >= 1 and b_sum.chunks_embedded == new_texts < bob_texts, (b_sum, bob_texts)
        assert server.collections()[name] > after_alice

        query = "compute the crc32 checksum of a file"
        # Bob has the function: he finds it. Alice's copy has no such function: the server
        # never hands her Bob's version (and her hit list shows only her own content).
        bob_hits = bob.search(query, limit=5, mode="vector")
        assert any(h.symbol and "checksum_crc32_of_file" in h.symbol for h in bob_hits), bob_hits
        alice_hits = alice.search(query, limit=20, mode="vector")
        assert all(not (h.symbol and "checksum" in h.symbol) for h in alice_hits), alice_hits
        assert all("checksum" not in h.preview for h in alice_hits)

        # Ask the server directly what it would return for Alice, with her possession filter:
        # only entries whose file hash is one of her files' hashes.
        qvec = embedder.embed_query(query)
        held = {p: r.sha256 for p, r in alice.store.sql.file_records().items()}
        raw = alice.store.vectors.query(qvec, 50, held=held)  # type: ignore[call-arg]
        alice_ids = alice.store.sql.all_chunk_ids()
        assert raw and {cid for cid, _ in raw} <= alice_ids
        # Without the filter the shared collection does hold Bob's other version.
        unfiltered = alice.store.vectors.query(qvec, 50)
        assert {cid for cid, _ in unfiltered} - alice_ids

        # Both find the shared functions, shown from their own working copy.
        for ws, root in ((alice, alice_root), (bob, bob_root)):
            hits = ws.search("great-circle distance between two points", limit=3)
            assert hits[0].path == "geo/distance.py" and hits[0].symbol == "haversine_km"
            lines = (root / hits[0].path).read_text().splitlines()
            assert hits[0].preview.splitlines() == lines[hits[0].start_line - 1 : hits[0].end_line]

        # Alice edits a file: her old entries stay on the server (Bob may hold that content),
        # her searches follow her new content.
        before = server.collections()[name]
        (alice_root / "text/slug.py").write_text(FILES["text/slug.py"].lstrip() + "\n# edited\n")
        alice.index()
        assert server.collections()[name] >= before
        hits = alice.search("turn a blog post title into a url slug", limit=3)
        assert hits[0].path == "text/slug.py"
        bob_hits = bob.search("turn a blog post title into a url slug", limit=3)
        assert bob_hits[0].path == "text/slug.py"

        # Garbage collection: the shared collection is dropped (CI then re-indexes `main`);
        # each machine's next full run puts its own entries back from its local vector
        # cache, embedding nothing again.
        server.client().delete_collection(name)
        again = bob.index()
        assert again.chunks_embedded == 0 and again.repaired.get("missing_vectors_restored")
        assert server.collections()[name] == len(bob.store.sql.all_chunk_ids())
        bob_hits = bob.search("compute the crc32 checksum of a file", limit=3, mode="vector")
        assert any(h.symbol and "checksum_crc32_of_file" in h.symbol for h in bob_hits), bob_hits
