"""The local journal of winner orders that could not reach the queue (Redis down), or that
the queue took but no replica confirmed yet (held through a failover: app/video/dispatch.py).

One file per process, `{DATA_DIR}/video-jobs/<pid>.<start>@<host>.jsonl`, named like the
storage's render files so that a dead owner is recognised. Lines are `{"order": {...}}` when
an order is journaled and `{"done": "<job key>"}` when the local runner finished it (or a
replica confirmed a held one). A process only writes its own file. When Redis answers,
`adopt_dead()` claims the files of processes of this host that are gone (renamed to
`<name>.adopted-<adopter tag>` first, so two adopters never both take one), and their
unfinished orders join the durable queue; a file whose orders are all done is deleted. A
claimed file whose adopter died before it was done is claimed again.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

from app.video.queue_model import RenderOrder
from app.video.storage import _host, _owner_tag, _process_start

logger = logging.getLogger(__name__)

_TAG = r"(\d+)\.(\d+)@([A-Za-z0-9._]+)"
_NAME_RE = re.compile(_TAG + r"\.jsonl")
_ADOPTED_RE = re.compile(r".+\.jsonl\.adopted-" + _TAG)


def _dead(match: re.Match[str] | None) -> bool:
    if match is None or match[3] != _host():
        return False
    return _process_start(int(match[1])) not in {match[2], "0"}


def _dead_owner(name: str) -> bool:
    """True for the journal of a process of this host that no longer runs."""
    return _dead(_NAME_RE.fullmatch(name))


def _dead_adopter(name: str) -> bool:
    """True for a claimed journal whose adopter died before its orders joined the queue."""
    return _dead(_ADOPTED_RE.fullmatch(name))


def read_pending(path: Path) -> list[RenderOrder]:
    """The orders of a journal file that no `done` line follows."""
    orders: dict[str, RenderOrder] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            record = json.loads(line)
            if "done" in record:
                orders.pop(str(record["done"]), None)
            else:
                order = RenderOrder.from_dict(record["order"])
                orders[order.job_key] = order
        except (ValueError, TypeError, KeyError):
            logger.warning("skipping an unreadable line of %s", path)
    return list(orders.values())


class OrderJournal:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.tag = _owner_tag(os.getpid())
        self.path = directory / f"{self.tag}.jsonl"
        self.open = 0  # orders journaled and not done yet

    def _append(self, record: dict[str, object]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
            os.fsync(fd)  # a winner: it must survive this process
        finally:
            os.close(fd)

    def append(self, order: RenderOrder) -> None:
        self._append({"order": order.to_dict()})
        self.open += 1

    def done(self, order: RenderOrder) -> None:
        self._append({"done": order.job_key})
        self.open = max(0, self.open - 1)
        if self.open == 0:  # everything done: start afresh
            self.path.unlink(missing_ok=True)

    def adopt_dead(self) -> list[tuple[Path, list[RenderOrder]]]:
        """Claim the journals of dead processes of this host: (claimed file, pending orders)."""
        claimed: list[tuple[Path, list[RenderOrder]]] = []
        if not self.directory.is_dir():
            return claimed
        mine = f".adopted-{self.tag}"
        for path in sorted(self.directory.glob("*.jsonl*")):
            if path.name.endswith(mine):  # claimed earlier; its submit failed: again
                claimed.append((path, read_pending(path)))
                continue
            if path == self.path or not (_dead_owner(path.name) or _dead_adopter(path.name)):
                continue
            original = path.name.split(".adopted-", 1)[0]
            target = path.with_name(original + mine)
            try:
                os.rename(path, target)
            except FileNotFoundError:
                continue  # another process adopted it first
            claimed.append((target, read_pending(target)))
        return claimed
