-- The dashboard's overview, reading only: what it costs does not grow with the number of jobs.
-- KEYS: queue leases
-- ARGV: job_prefix finished_prefix worker_limit
-- Returns {pending, running, complete in the last hour, failed in the last hour, workers}:
-- the hour is the 60 newest minute counters (count_finished), the current one included;
-- workers holds the `worker` of the running jobs whose leases end first, at most worker_limit.
local minute = math.floor(now_ms() / 60000)
local function last_hour(state)
  local counters = {}
  for m = minute - 59, minute do counters[#counters + 1] = finished_prefix .. state .. ':' .. m end
  local total = 0
  for _, count in ipairs(redis.call('MGET', unpack(counters))) do
    if count then total = total + tonumber(count) end
  end
  return total
end
local workers = {}
for _, id in ipairs(redis.call('ZRANGE', leases, 0, tonumber(worker_limit) - 1)) do
  workers[#workers + 1] = redis.call('HGET', job_prefix .. id, 'worker') or ''
end
return {redis.call('ZCARD', queue), redis.call('ZCARD', leases), last_hour('complete'),
        last_hour('failed'), workers}
