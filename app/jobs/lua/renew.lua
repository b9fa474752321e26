-- Extend the leases of attempts that still hold their job; safe to send again.
-- KEYS: leases
-- ARGV: job_prefix lease_ms ...
-- The rest of ARGV is job id / claim token pairs. Returns the tokens whose job has moved on
-- (finished, or recovered by the sweep and maybe running under another attempt).
local deadline = now_ms() + tonumber(lease_ms)
local lost = {}
for i = REST, #ARGV, 2 do
  local id, token = ARGV[i], ARGV[i + 1]
  local held = redis.call('HMGET', job_prefix .. id, 'state', 'claim_token')
  if held[1] == 'running' and held[2] == token then
    redis.call('ZADD', leases, deadline, id)
  else
    table.insert(lost, token)
  end
end
return lost
