-- Cancel a job; safe to send again.
-- KEYS: job queue pending_index failed_index expiry
-- ARGV: id ttl_ms user_id message finished_prefix finished_keep_ms cancelled_code
-- A pending job fails with the cancel's code at once and leaves the queue; a running one is
-- marked: its attempt sees the mark at its next heartbeat and stops at a chunk boundary, and
-- should it come back to the queue first (handed back, recovered, deferred), the claim that
-- finds it fails it instead of running it (claim.lua). The first cancel's time and user stay.
-- Returns {outcome, record}: cancelled (pending, now failed); requested (running, marked);
-- already (cancelled before); finished (complete or failed otherwise); missing (no record,
-- and an empty one).
local state = redis.call('HGET', job, 'state')
if not state then return {'missing', {}} end
local outcome
if state == 'pending' or state == 'running' then
  local now = now_ms()
  if not redis.call('HGET', job, 'cancel_requested_at') then
    redis.call('HSET', job, 'cancel_requested_at', now, 'cancelled_by', user_id)
  end
  if state == 'pending' then
    redis.call('ZREM', queue, id)
    redis.call('ZREM', pending_index, id)
    finish_cancelled(job, id, now, ttl_ms, expiry, failed_index, finished_prefix,
                     finished_keep_ms, cancelled_code, message)
    outcome = 'cancelled'
  else
    outcome = 'requested'
  end
elseif redis.call('HGET', job, 'error_code') == cancelled_code then
  outcome = 'already'
else
  outcome = 'finished'
end
return {outcome, redis.call('HGETALL', job)}
