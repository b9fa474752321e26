-- Store a new pending job and queue it; safe to send again.
-- KEYS: job queue all_index pending_index expiry idempotency
-- ARGV: id ttl_ms fingerprint keyed job_prefix ...
-- The rest of ARGV is the record's field/value pairs. `keyed` is 1 when the submission has an
-- Idempotency-Key (else `idempotency` is only a key of the same slot, never touched); the key
-- holds "<job id> <fingerprint>" (or, written before 0.5, the job id alone, whose record has
-- the fingerprint). Returns {outcome, job id, record}: created; resent (this very submit ran
-- already, its reply was lost); existing (another request with the same key and body);
-- conflict. The record of an earlier job is empty when it lives in another shard (migrated
-- from the layout before 0.5): the caller reads it there.
if keyed == '1' then
  local value = redis.call('GET', idempotency)
  if value then
    local earlier, stored = string.match(value, '^(%S+) (%S+)$')
    if not earlier then
      earlier = value
      stored = redis.call('HGET', job_prefix .. earlier, 'idempotency_fingerprint')
    end
    if stored then
      local outcome = 'conflict'
      if earlier == id then outcome = 'resent' elseif stored == fingerprint then outcome = 'existing' end
      return {outcome, earlier, redis.call('HGETALL', job_prefix .. earlier)}
    end
  end
end
-- Job IDs are never reused, so a record under this one can only be this submit's own.
if redis.call('EXISTS', job) == 1 then
  return {'resent', id, redis.call('HGETALL', job)}
end
local now = now_ms()
redis.call('HSET', job, 'created_at', now, unpack(ARGV, REST))
if keyed == '1' then
  redis.call('HSET', job, 'idempotency_key', idempotency)
  redis.call('SET', idempotency, id .. ' ' .. fingerprint)
end
keep_until(job, id, now + tonumber(ttl_ms), expiry)
redis.call('ZADD', queue, now, id)
redis.call('ZADD', all_index, 0, id)
redis.call('ZADD', pending_index, 0, id)
return {'created', id, redis.call('HGETALL', job)}
