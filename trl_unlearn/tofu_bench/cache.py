"""On-disk stage cache of ``tofu-bench``: one folder per stage, keyed by a hash of its configuration.

A stage's folder is ``<output_dir>/<stage>/<name>-<key>/``, where ``key`` hashes the JSON of the
stage's full configuration (its settings and the keys of the stages it reads). ``stage.json`` is
written last, once the stage's files are complete: a folder without it (a crash, Ctrl-C) is
cleared and the stage re-runs. Changing a setting changes the key, so the old result stays on
disk next to the new one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MARKER = "stage.json"


def _canonical(value: Any) -> Any:
    """Numbers compared by value (``2`` and ``2.0`` from a command line or JSON are the same setting)."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def stage_key(spec: dict[str, Any]) -> str:
    """12 hex digits of the SHA-256 of ``spec`` as canonical JSON."""
    text = json.dumps(_canonical(spec), sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class StageRecord:
    """One stage of a run: what it is, where its files are (relative to ``output_dir``), whether it ran
    or came from the cache."""

    stage: str
    name: str
    key: str
    path: Path
    status: str  # "ran" or "cached"
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "name": self.name, "key": self.key, "path": str(self.path),
                "status": self.status, "seconds": self.seconds, **({"info": self.info} if self.info else {})}


class StageCache:
    """Runs stages at most once per configuration.

    Parameters
    ----------
    root : Path
        The bench's ``output_dir``.
    force : bool
        Re-run every stage (its old folder is replaced).
    """

    def __init__(self, root: str | Path, force: bool = False):
        self.root = Path(root)
        self.force = force
        self.records: list[StageRecord] = []

    def path(self, stage: str, name: str, spec: dict[str, Any]) -> tuple[Path, str]:
        key = stage_key(spec)
        return self.root / stage / f"{name}-{key}", key

    def is_cached(self, stage: str, name: str, spec: dict[str, Any]) -> bool:
        path, _ = self.path(stage, name, spec)
        return not self.force and (path / MARKER).is_file()

    def run(self, stage: str, name: str, spec: dict[str, Any], fn: Callable[[Path], dict[str, Any] | None],
            label: str | None = None) -> StageRecord:
        """Return the cached stage, or run ``fn(folder)`` and record it.

        ``fn`` writes its files into ``folder`` and may return a small dict of facts kept in
        ``stage.json`` (``info``); the time it took is kept as ``seconds``. ``name`` prefixes the
        folder; ``label`` (default ``name``) names the stage in the records, so runs that share a
        folder prefix (one method's sweep points) stay apart in the manifest.
        """
        path, key = self.path(stage, name, spec)
        name = label or name
        marker = path / MARKER
        if marker.is_file() and not self.force:
            saved = json.loads(marker.read_text())
            record = StageRecord(stage, name, key, path.relative_to(self.root), "cached", float(saved["seconds"]),
                                 saved.get("info") or {})
        else:
            if path.exists():
                shutil.rmtree(path)
            path.mkdir(parents=True)
            start = time.perf_counter()
            info = fn(path) or {}
            seconds = time.perf_counter() - start
            marker.write_text(json.dumps({"stage": stage, "name": name, "key": key, "spec": spec,
                                          "seconds": seconds, "info": info}, indent=2, sort_keys=True, default=str))
            record = StageRecord(stage, name, key, path.relative_to(self.root), "ran", seconds, info)
        self.records.append(record)
        return record

    def write_manifest(self) -> Path:
        """``<output_dir>/manifest.json``: every stage of the last run, ran or cached."""
        path = self.root / "manifest.json"
        path.write_text(json.dumps({"stages": [r.as_dict() for r in self.records]}, indent=2))
        return path
