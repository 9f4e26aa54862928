"""sha256 of JSON values, files and folders: the one place every hash of the harness is made.

Each function's bytes are part of what it hashes into (cache keys, manifests, the zoo's
MANIFEST.json): change one and every stored hash made with it stops matching.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

BLOCK = 2**20
"""Files are read in blocks of this size."""
FULL_HASH_MAX = 256 * 2**20
"""Files above this size are fingerprinted by size plus their first and last CHUNK bytes
(a 70B checkpoint is 140 GB; hashing it all on every run is not affordable)."""
CHUNK = 8 * 2**20


def json_sha256(data: Any) -> str:
    """sha256 of ``data`` as canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def folder_sha256(path: Path) -> str:
    """sha256 of a folder: every file's relative name and bytes, in sorted order (timestamps,
    permissions and hidden-ness play no part)."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f.relative_to(path).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def file_fingerprint(path: Path) -> str:
    """sha256 of a file's size and bytes; above FULL_HASH_MAX, of its size and its first and
    last CHUNK bytes only."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        if size <= FULL_HASH_MAX:
            for block in iter(lambda: f.read(BLOCK), b""):
                h.update(block)
        else:
            h.update(f.read(CHUNK))
            f.seek(size - CHUNK)
            h.update(f.read(CHUNK))
    return h.hexdigest()


def folder_fingerprint(folder: Path) -> str:
    """Content fingerprint of a model folder: every visible file's name and
    ``file_fingerprint`` (see FULL_HASH_MAX), as canonical JSON."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    return json_sha256([[str(p.relative_to(folder)), file_fingerprint(p)] for p in files])
