"""Replaying outage writes into Redis without ever overwriting a newer value."""

from __future__ import annotations

import time

from app.cache.journal import JournalRecord

# KEYS[1] key. ARGV[1] payload ('' = delete), ARGV[2] created_at / deleted_at (ISO-8601 UTC),
# ARGV[3] TTL in ms ('-1' = permanent), ARGV[4] '1' when the replayed entry is permanent.
# A value created later than ours wins; it is made permanent when ours was permanent.
# Returns 1 when written, 0 when a newer value was kept.
REPLAY_SCRIPT = """
local current = redis.pcall('GET', KEYS[1])
if type(current) == 'string' then
  local ok, stored = pcall(cjson.decode, current)
  if ok and type(stored) == 'table' and type(stored['created_at']) == 'string' then
    if stored['created_at'] > ARGV[2] then
      if ARGV[4] == '1' and stored['permanent'] ~= true then
        stored['permanent'] = true
        redis.call('SET', KEYS[1], cjson.encode(stored))
      end
      return 0
    end
    if stored['permanent'] == true and ARGV[4] == '0' and ARGV[1] ~= '' then
      return 0
    end
  end
end
if ARGV[1] == '' then
  redis.call('DEL', KEYS[1])
elseif ARGV[3] == '-1' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
end
return 1
"""


def replay_arguments(record: JournalRecord, now: float | None = None) -> tuple[str, ...] | None:
    """ARGV for REPLAY_SCRIPT, or None when the entry expired meanwhile."""
    if record.entry is None:
        return ("", record.at, "-1", "0")
    if record.entry.permanent or record.expires_at is None:
        return (record.entry.encode().decode("utf-8"), record.entry.created_at, "-1", "1")
    remaining_ms = int((record.expires_at - (time.time() if now is None else now)) * 1000)
    if remaining_ms <= 0:
        return None
    return (record.entry.encode().decode("utf-8"), record.entry.created_at, str(remaining_ms), "0")
