-- Finish an attempt: complete with its result, or failed with its error; safe to send again.
-- KEYS: job leases running_index final_index expiry staged_result result
-- ARGV: id token final_state ttl_ms finished_prefix finished_keep_ms ...
-- The rest of ARGV is the fields to store. A complete attempt's result was SET at
-- staged_result in the same round trip, outside Lua (Redis takes the bytes without copying
-- them); it becomes `result` here, atomically with the state. Returns applied;
-- already_applied (this attempt finished the job: a re-sent call); or superseded (the job has
-- moved on without it). Whatever is not applied leaves no staged result behind.
local held = redis.call('HMGET', job, 'state', 'claim_token', 'finished_token')
if held[1] == 'running' and held[2] == token then
  local now = now_ms()
  local until_ms = now + tonumber(ttl_ms)
  redis.call('HSET', job, 'state', final_state, 'finished_at', now, 'finished_token', token,
             unpack(ARGV, REST))
  keep_until(job, id, until_ms, expiry)
  if redis.call('EXISTS', staged_result) == 1 then
    redis.call('RENAME', staged_result, result)
    redis.call('PEXPIREAT', result, until_ms)
  end
  redis.call('ZREM', leases, id)
  redis.call('ZREM', running_index, id)
  redis.call('ZADD', final_index, 0, id)
  count_finished(finished_prefix, finished_keep_ms, final_state, now)
  return 'applied'
end
redis.call('DEL', staged_result)
if held[3] == token then return 'already_applied' end
return 'superseded'
