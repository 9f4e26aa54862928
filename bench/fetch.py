"""``bench fetch``: download the Hub models and data sets a run reads, before the run.

    python -m bench fetch experiment=r1_distill hardware=h100x8     # takes every override `bench run` takes
    make fetch ARGS="experiment=r1_distill run.only=r1_distill_qwen_32b"
    HF_HUB_OFFLINE=1 python -m bench fetch experiment=r1_distill    # download nothing: is it all there?

A server's start-up time-out then never includes a download (DeepSeek-R1 is 690 GB). Models
are downloaded into the Hub cache (``HF_HUB_CACHE``, default ``~/.cache/huggingface/hub``)
as vLLM reads them: the files vLLM loads (``hub.MODEL_FILES``), at the preset's pinned
``serve.revision`` or ``main``, with huggingface_hub's progress bars, after checking that the
disk has room for what is missing. Data sets are loaded through lm-eval exactly as the run
loads them (a gated one, GPQA, needs its terms accepted on the Hub and ``HF_TOKEN``). Each
line printed names the commit the cache now holds, which the run records in its manifest.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.data import hub

GB = 1e9


@dataclass(frozen=True)
class Fetched:
    """One repository after ``bench fetch``: the commit the cache holds, and its size."""

    source: hub.Source
    commit: str | None
    bytes: int
    status: str
    """``cached`` (already there), ``downloaded``, or ``missing`` (offline, not in the cache)."""


def free_bytes(folder: Path) -> int:
    """Free space where ``folder`` is (or would be created)."""
    while not folder.exists():
        folder = folder.parent
    return shutil.disk_usage(folder).free


def model_bytes_missing(source: hub.Source) -> int:
    """What downloading a model would add to the cache (asks the Hub for the files' sizes)."""
    from huggingface_hub import HfApi

    info = HfApi().model_info(source.repo_id, revision=source.revision, files_metadata=True)
    cached = hub.cached_commit(source.repo_id, info.sha, "model")
    have = set()
    if cached is not None:
        folder = hub.repo_folder(source.repo_id, "model") / "snapshots" / cached
        have = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert info.siblings is not None  # model_info lists a repo's files
    return hub.bytes_missing([(s.rfilename, s.size or 0) for s in info.siblings], hub.MODEL_FILES, have)


def check_room(sources: list[hub.Source]) -> None:
    """Refuse to start a download the disk cannot hold (with the sizes and where to put it)."""
    need = sum(model_bytes_missing(s) for s in sources if s.repo_type == "model")
    free = free_bytes(hub.cache_dir())
    print(f"models to download: {need / GB:,.1f} GB; free in {hub.cache_dir()}: {free / GB:,.1f} GB")
    if need > free:
        raise SystemExit(
            f"bench fetch: {need / GB:,.1f} GB to download but {free / GB:,.1f} GB free in "
            f"{hub.cache_dir()}: free space, or point HF_HUB_CACHE at a larger disk (for the "
            f"run too)"
        )


def fetch_model(source: hub.Source) -> None:
    from huggingface_hub import snapshot_download

    snapshot_download(
        source.repo_id, revision=source.revision, allow_patterns=hub.MODEL_FILES, cache_dir=hub.cache_dir()
    )


def fetch_datasets(cfg, task_manager, tasks: set[str]) -> None:
    """Load the tasks' data as the run does (downloads what the cache lacks)."""
    for task in cfg.suite.tasks:
        if task in tasks:
            print(f"data set of {task}:")
            task_manager.load_task_or_group([task])


def present(source: hub.Source) -> tuple[str | None, int]:
    commit = hub.cached_commit(source.repo_id, source.revision, source.repo_type)
    return commit, hub.snapshot_bytes(source.repo_id, commit, source.repo_type) if commit else 0


def fetch(cfg, task_manager) -> list[Fetched]:
    """Everything ``cfg`` reads from the Hub, in the cache; offline, only checked."""
    sources = hub.sources(cfg, task_manager)
    before = {s: present(s) for s in sources}
    todo = [s for s in sources if before[s][0] is None]
    if todo and not hub.offline():
        check_room(todo)
        for s in todo:
            if s.repo_type == "model":
                print(f"model {s.repo_id} @ {s.revision or 'main'} (for {', '.join(s.used_by)}):")
                fetch_model(s)
        fetch_datasets(cfg, task_manager, {t for s in todo if s.repo_type == "dataset" for t in s.used_by})
    out = []
    for s in sources:
        commit, size = present(s)
        status = "cached" if before[s][0] is not None else "downloaded" if commit else "missing"
        out.append(Fetched(s, commit, size, status))
    return out


def render(fetched: list[Fetched]) -> str:
    if not fetched:
        return "nothing to fetch: every model of this run is a local folder or an API, and its tasks' data is local"
    lines = [f"Hub cache: {hub.cache_dir()}"]
    for f in fetched:
        s = f.source
        lines.append(
            f"  {s.repo_type:7s} {s.repo_id} @ {s.revision or 'main'} -> {f.commit or '-'}  "
            f"{f.bytes / GB:,.2f} GB  {f.status}  (for {', '.join(s.used_by)})"
        )
    missing = [f for f in fetched if f.status == "missing"]
    if missing:
        lines.append(
            f"{len(missing)} not in the cache, and HF_HUB_OFFLINE is set: run `bench fetch` with the "
            f"same overrides where the Hub can be reached"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from bench.compose import compose
    from bench.evaluation.evaluate import task_manager
    from bench.validate import resolve_paths

    try:
        cfg = compose(argv)
    except (HydraException, OmegaConfBaseException) as e:
        raise SystemExit(f"bench fetch: {e}") from None
    if hub.offline():
        os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    fetched = fetch(cfg, task_manager(resolve_paths(cfg.suite.include_paths), cfg.suite.tasks))
    print(render(fetched))
    if any(f.status == "missing" for f in fetched):
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
