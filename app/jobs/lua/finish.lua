-- Finish an attempt: complete with its result, or failed with its error; safe to send again.
-- KEYS: job leases running_index final_index expiry
-- ARGV: id token final_state ttl_ms ...
-- The rest of ARGV is the fields to store. Returns applied; already_applied (this attempt
-- finished the job: a re-sent call); or superseded (the job has moved on without it).
local held = redis.call('HMGET', job, 'state', 'claim_token', 'finished_token')
if held[1] == 'running' and held[2] == token then
  local now = now_ms()
  redis.call('HSET', job, 'state', final_state, 'finished_at', now, 'finished_token', token,
             unpack(ARGV, REST))
  keep_until(job, id, now + tonumber(ttl_ms), expiry)
  redis.call('ZREM', leases, id)
  redis.call('ZREM', running_index, id)
  redis.call('ZADD', final_index, 0, id)
  return 'applied'
end
if held[3] == token then return 'already_applied' end
return 'superseded'
