-- Cancel a job; safe to send again.
-- KEYS: job queue pending_index failed_index expiry
-- ARGV: id ttl_ms user_id message finished_prefix finished_keep_ms
-- A pending job fails with code `cancelled` at once and leaves the queue; a running one is
-- marked: its attempt sees the mark at its next heartbeat and stops at a chunk boundary.
-- Returns cancelled (pending, now failed); requested (running, marked); already (cancelled
-- before); finished (complete or failed otherwise); missing (no record).
local state = redis.call('HGET', job, 'state')
if not state then return 'missing' end
if state == 'pending' then
  local now = now_ms()
  redis.call('HSET', job, 'state', 'failed', 'finished_at', now, 'error_code', 'cancelled',
             'error_message', message, 'cancel_requested_at', now, 'cancelled_by', user_id)
  keep_until(job, id, now + tonumber(ttl_ms), expiry)
  redis.call('ZREM', queue, id)
  redis.call('ZREM', pending_index, id)
  redis.call('ZADD', failed_index, 0, id)
  count_finished(finished_prefix, finished_keep_ms, 'failed', now)
  return 'cancelled'
end
if state == 'running' then
  if not redis.call('HGET', job, 'cancel_requested_at') then
    redis.call('HSET', job, 'cancel_requested_at', now_ms(), 'cancelled_by', user_id)
  end
  return 'requested'
end
if redis.call('HGET', job, 'error_code') == 'cancelled' then return 'already' end
return 'finished'
