"""A Hugging Face Hub cache laid out by hand as huggingface_hub lays it out (no network):

    <cache>/models--<owner>--<name>/blobs/<sha256 of the file>
    <cache>/models--<owner>--<name>/snapshots/<commit>/<file>  -> ../../blobs/<sha256>
    <cache>/models--<owner>--<name>/refs/<branch or tag>       (holds the commit)

(``datasets--...`` for data sets.)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def fake_repo(
    cache: Path,
    repo_id: str,
    files: dict[str, str | bytes | Path],
    refs: tuple[str, ...] = ("main",),
    commit: str | None = None,
    repo_type: str = "model",
) -> str:
    """Write one snapshot of ``repo_id`` into ``cache`` (a Path value: that file's bytes);
    returns its commit."""
    data = {
        name: body.encode() if isinstance(body, str) else body.read_bytes() if isinstance(body, Path) else body
        for name, body in files.items()
    }
    commit = commit or hashlib.sha1(repr(sorted(data.items())).encode()).hexdigest()
    folder = cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    for name, body in data.items():
        blob = folder / "blobs" / hashlib.sha256(body).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(body)
        link = folder / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    for ref in refs:
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / ref).write_text(commit)
    return commit
