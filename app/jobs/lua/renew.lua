-- Extend the leases of attempts that still hold their job, and record their progress; safe to
-- send again.
-- KEYS: leases
-- ARGV: job_prefix lease_ms ...
-- The rest of ARGV is job id / claim token / scenarios done triples ('' when the attempt has
-- no progress to report yet). Progress only moves forward within an attempt. Returns
-- {tokens whose job has moved on (finished, or recovered by the sweep and maybe running under
-- another attempt), tokens whose job was asked to stop (POST /jobs/<id>/cancel)}.
local now = now_ms()
local deadline = now + tonumber(lease_ms)
local lost, cancel = {}, {}
for i = REST, #ARGV, 3 do
  local id, token, done = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local job = job_prefix .. id
  local held = redis.call('HMGET', job, 'state', 'claim_token', 'progress_done',
                          'progress_token', 'cancel_requested_at')
  if held[1] == 'running' and held[2] == token then
    redis.call('ZADD', leases, deadline, id)
    local before = -1
    if held[4] == token then before = tonumber(held[3]) or -1 end
    if done ~= '' and tonumber(done) > before then
      redis.call('HSET', job, 'progress_done', done, 'progress_at', now, 'progress_token', token)
    end
    if held[5] then table.insert(cancel, token) end
  else
    table.insert(lost, token)
  end
end
return {lost, cancel}
