"""Instance records: what ``neutrino instance`` remembers about each instance, under the state directory.

One JSON file per instance, ``<state_dir>/instances/<name>.json``, plus a private directory
``<state_dir>/instances/<name>/`` for the instance's runtime files (DHCP client pid, lease and
script). The record is the only link between an instance name and its port and namespace, so it is
written before anything is created (claiming the name atomically with ``O_EXCL``) and removed only
after everything is gone: a crash in between leaves a record that ``instance delete`` can finish.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from neutrino.compute.errors import InstanceExists, InstanceNotFound, InvalidInstanceName

# Instance names become part of a namespace name and of file names; keep them to a safe alphabet.
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NAME_MAX_CHARS = 63


def check_instance_name(name: str) -> str:
    """Return ``name`` if it can name an instance (letters, digits, ``. _ -``; at most 63), else raise."""
    if len(name) > NAME_MAX_CHARS:
        raise InvalidInstanceName(name, f"longer than {NAME_MAX_CHARS} characters")
    if not _NAME_PATTERN.fullmatch(name):
        raise InvalidInstanceName(name, "use letters, digits, '.', '_' and '-', starting with a letter or digit")
    return name


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """One instance as this machine knows it; ``port_id`` is None until the port exists."""

    name: str
    instance_id: str
    host: str
    namespace: str
    # Namespace holding the tap (the host's); None is the namespace the commands run in.
    host_namespace: str | None
    dhcp: bool
    network_id: str
    port_id: str | None = None
    # The user's cloud the port was made with; later commands fall back to it (None: OS_* variables).
    cloud: str | None = None
    created_at: str = ""
    # What the metadata backend serves the instance: an OpenSSH public key (and its name) and user
    # data (base64 of the file's bytes). The record is 0600, as these may be private.
    public_key: str | None = None
    key_name: str | None = None
    user_data: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InstanceRecord:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class InstanceStore:
    """The records of one state directory; every write replaces a file atomically."""

    def __init__(self, state_dir: Path) -> None:
        self.directory = Path(state_dir) / "instances"

    def record_path(self, name: str) -> Path:
        return self.directory / f"{check_instance_name(name)}.json"

    def runtime_dir(self, name: str) -> Path:
        """Private directory for the instance's runtime files (pid, lease, DHCP client script)."""
        return self.directory / check_instance_name(name)

    def claim(self, record: InstanceRecord) -> None:
        """Write a new record; raise InstanceExists if the name is taken (atomic, O_EXCL)."""
        path = self.record_path(record.name)
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise InstanceExists(record.name) from None
        with os.fdopen(fd, "w") as fh:
            json.dump(record.to_json(), fh, indent=2)
            fh.write("\n")

    def save(self, record: InstanceRecord) -> None:
        """Replace an existing record (write to a temporary file, then rename over it)."""
        path = self.record_path(record.name)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(record.to_json(), fh, indent=2)
            fh.write("\n")
        tmp.replace(path)

    def load(self, name: str) -> InstanceRecord:
        path = self.record_path(name)
        try:
            return InstanceRecord.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise InstanceNotFound(name) from None

    def remove(self, name: str) -> None:
        """Forget the instance and its runtime files; absent is success."""
        shutil.rmtree(self.runtime_dir(name), ignore_errors=True)
        self.record_path(name).unlink(missing_ok=True)

    def all(self) -> Iterator[InstanceRecord]:
        """Every record, sorted by name; unreadable files are skipped (a half-written record)."""
        if not self.directory.is_dir():
            return
        for path in sorted(self.directory.glob("*.json")):
            if path.name.startswith("."):
                continue
            try:
                yield InstanceRecord.from_json(json.loads(path.read_text()))
            except (OSError, ValueError, TypeError):
                continue
