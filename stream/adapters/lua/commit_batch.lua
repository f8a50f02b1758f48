-- Apply one ingest batch of one partition atomically (tidecast.stream.redis_store.RedisWindowStore.commit).
-- Every key shares the partition's hash tag (ARGV[1] = "<prefix>{<partition>}:"), so this runs on Redis Cluster.
-- ARGV[2] = topic, ARGV[3] = offset the batch was built on ('' for none), ARGV[4] = the batch as JSON:
--   {"next": int, "max_ts": int|null, "trim": int|null, "counts": [ingested, duplicates, late, invalid, dlq],
--    "rows": [[bucket, series, units, orders, revenue, returns, views, add_to_cart, promo_orders], ...],
--    "forget": [bucket, ...], "seen": [[bucket, [event_id, ...]], ...], "gap": [stored offset, first offset] (optional),
--    "plans": [[bucket, target, issued ms, offset, plan JSON], ...] (optional),
--    "standing": [[kind, target, issued ms, offset, JSON], ...] (optional; kind 'policy' or 'inventory')}
-- A plan is written to "P plan:<bucket>" target -> plan JSON ([issued, offset, promo, price, open, event]) unless the
-- stored one is later by (issued, offset): last write wins, so applying a batch twice changes nothing. A standing
-- value is written to "P standing:<kind>" target -> JSON ([issued, offset, values...]) the same way, never trimmed.
-- redis.call formats Lua numbers exactly (shortest round trip), so float sums lose nothing on the way.
-- Returns 1 when applied, 0 when fenced: the stored offset is not the one the batch was built on; -1 when the
-- batch was built on an offset and none is stored (Redis lost the partition's state: FLUSHALL, a restart).
-- The first commit of a topic-partition (no stored offset) writes its epoch marker "P epoch" topic -> Redis time,
-- so a later load tells state that lost its offset from a fresh partition. A "gap" (records deleted before they
-- were ingested, allowed by TIDECAST_ALLOW_GAPS) is counted in "P gaps" "<topic>@<stored offset>" -> records.
-- Returns an error "commit_batch: invalid batch: <reason>" and writes nothing when the batch breaks the format:
-- Redis does not undo a script's earlier writes when a later command fails, so every argument is checked in
-- one pass before the first write.
local p, topic = ARGV[1], ARGV[2]
local off_key = KEYS[1]
local current = redis.call('HGET', off_key, topic)
if (current or '') ~= ARGV[3] then
  if not current then return -1 end
  return 0
end
local ok, batch = pcall(cjson.decode, ARGV[4])
if not ok or type(batch) ~= 'table' then return redis.error_reply('commit_batch: the batch is not a JSON object') end

local counters = {'ingested', 'duplicates', 'late', 'invalid', 'dlq'}
local metrics = {'units', 'orders', 'revenue', 'returns', 'views', 'add_to_cart', 'promo_orders'}

-- Bounds (RedisWindowStore's METRIC_LIMIT, EXACT_INT, BUCKET_LIMIT): cjson decodes every number as a double,
-- exact for integers up to 2^53; Lua writes a number into a key name with 14 digits; a metric increment of
-- at most 1e15 keeps HINCRBYFLOAT sums finite and integer counts exact; revenue, a float sum, may reach 1e20.
local METRIC_LIMIT = 1e15
local REVENUE_LIMIT = 1e20
local EXACT_INT = 9007199254740991
local BUCKET_LIMIT = 1e14
local floor, null = math.floor, cjson.null

local function int(x, lo, hi)  -- false for NaN, infinities, non-numbers and fractions
  return type(x) == 'number' and x >= lo and x <= hi and x == floor(x)
end
local function bucket(x) return int(x, -BUCKET_LIMIT, BUCKET_LIMIT) end
local function invalid(reason) return redis.error_reply('commit_batch: invalid batch: ' .. reason) end

local expected = ARGV[3] == '' and '0' or ARGV[3]
if not int(batch.next, tonumber(expected), EXACT_INT) then
  return invalid("'next' must be an integer from the expected offset " .. expected .. ' to 2^53-1')
end
if batch.max_ts ~= null and not int(batch.max_ts, -EXACT_INT, EXACT_INT) then
  return invalid("'max_ts' must be null or an integer within +-(2^53-1)")
end
if batch.trim ~= null and not bucket(batch.trim) then
  return invalid("'trim' must be null or a bucket: an integer within +-1e14")
end
local counts = batch.counts
if type(counts) ~= 'table' or #counts ~= 5 then return invalid("'counts' must be a list of 5 counts") end
for k = 1, 5 do
  if not int(counts[k], 0, EXACT_INT) then
    return invalid("'counts' must be integers from 0 to 2^53-1 ('" .. counters[k] .. "' is not)")
  end
end
local rows, forget, seen = batch.rows, batch.forget, batch.seen
if type(rows) ~= 'table' then return invalid("'rows' must be a list") end
for i, row in ipairs(rows) do
  if type(row) ~= 'table' or #row ~= 9 then
    return invalid('row ' .. i .. ' must be [bucket, series, 7 metric values]')
  end
  if not bucket(row[1]) then return invalid('row ' .. i .. ': the bucket must be an integer within +-1e14') end
  if type(row[2]) ~= 'string' then return invalid('row ' .. i .. ': the series must be a string') end
  for m = 3, 9 do
    local v, limit = row[m], (m == 5) and REVENUE_LIMIT or METRIC_LIMIT  -- row[5] is revenue
    if type(v) ~= 'number' or not (v >= -limit and v <= limit) then
      return invalid('row ' .. i .. ' (' .. row[2] .. '): ' .. metrics[m - 2] .. ' must be a finite number within +-'
        .. ((m == 5) and '1e20' or '1e15'))
    end
  end
end
if type(forget) ~= 'table' then return invalid("'forget' must be a list") end
for i, b in ipairs(forget) do
  if not bucket(b) then return invalid("'forget' " .. i .. ': a bucket must be an integer within +-1e14') end
end
if type(seen) ~= 'table' then return invalid("'seen' must be a list") end
for i, group in ipairs(seen) do
  if type(group) ~= 'table' or not bucket(group[1]) or type(group[2]) ~= 'table' then
    return invalid("'seen' " .. i .. ' must be [bucket (an integer within +-1e14), [event id, ...]]')
  end
  for _, id in ipairs(group[2]) do
    if type(id) ~= 'string' then return invalid("'seen' " .. i .. ': every event id must be a string') end
  end
end

local plans = batch.plans
if plans == nil or plans == null then plans = {} end
if type(plans) ~= 'table' then return invalid("'plans' must be a list") end
for i, plan in ipairs(plans) do
  if type(plan) ~= 'table' or #plan ~= 5 or not bucket(plan[1]) or type(plan[2]) ~= 'string'
      or not int(plan[3], -EXACT_INT, EXACT_INT) or not int(plan[4], 0, EXACT_INT) or type(plan[5]) ~= 'string' then
    return invalid("'plans' " .. i .. ' must be [bucket (an integer within +-1e14), target, issued ms, offset '
      .. '(integers within 2^53), plan JSON]')
  end
end

local standing = batch.standing
if standing == nil or standing == null then standing = {} end
if type(standing) ~= 'table' then return invalid("'standing' must be a list") end
for i, entry in ipairs(standing) do
  if type(entry) ~= 'table' or #entry ~= 5 or (entry[1] ~= 'policy' and entry[1] ~= 'inventory')
      or type(entry[2]) ~= 'string' or not int(entry[3], -EXACT_INT, EXACT_INT) or not int(entry[4], 0, EXACT_INT)
      or type(entry[5]) ~= 'string' then
    return invalid("'standing' " .. i .. " must be ['policy' or 'inventory', target, issued ms, offset "
      .. '(integers within 2^53), JSON]')
  end
end

local gap = batch.gap
if gap ~= nil and gap ~= null then
  if type(gap) ~= 'table' or not int(gap[1], 0, EXACT_INT) or not int(gap[2], gap[1] + 1, EXACT_INT) then
    return invalid("'gap' must be [stored offset, first offset], integers with the first past the stored")
  end
end

-- Writes: nothing below can fail on a batch that passed the checks above.
local stats_key = p .. 'stats:' .. topic
for k = 1, 5 do
  local v = counts[k]
  if v ~= 0 then redis.call('HINCRBY', stats_key, counters[k], v) end
end

local known = {}
for _, row in ipairs(rows) do
  local b = row[1]
  if not known[b] then
    redis.call('ZADD', p .. 'buckets', b, b)
    known[b] = p .. 'w:' .. b .. ':'
  end
  local prefix, series = known[b], row[2]
  for m = 1, 7 do
    local v = row[m + 2]
    if v ~= 0 then redis.call('HINCRBYFLOAT', prefix .. metrics[m], series, v) end
  end
end

for _, b in ipairs(forget) do
  redis.call('DEL', p .. 'seen:' .. topic .. ':' .. b)
end
for _, group in ipairs(seen) do
  local key, ids = p .. 'seen:' .. topic .. ':' .. group[1], group[2]
  local k, j = #ids, 1
  while j <= k do
    local last = math.min(k, j + 3999)
    redis.call('SADD', key, unpack(ids, j, last))
    j = last + 1
  end
end

-- whether the entry stored at key/field is older by (issued, offset) than (issued, offset): last write wins
local function older(key, field, issued, offset)
  local stored = redis.call('HGET', key, field)
  if not stored then return true end
  local ok_old, old = pcall(cjson.decode, stored)
  if ok_old and type(old) == 'table' and type(old[1]) == 'number' and type(old[2]) == 'number' then
    return old[1] < issued or (old[1] == issued and old[2] <= offset)
  end
  return true
end

for _, plan in ipairs(plans) do
  local key = p .. 'plan:' .. plan[1]
  if older(key, plan[2], plan[3], plan[4]) then
    redis.call('HSET', key, plan[2], plan[5])
    redis.call('ZADD', p .. 'plans', plan[1], plan[1])
  end
end

for _, entry in ipairs(standing) do
  local key = p .. 'standing:' .. entry[1]
  if older(key, entry[2], entry[3], entry[4]) then redis.call('HSET', key, entry[2], entry[5]) end
end

if batch.trim ~= null then
  local old = redis.call('ZRANGEBYSCORE', p .. 'buckets', '-inf', '(' .. batch.trim)
  for _, b in ipairs(old) do
    for m = 1, 7 do redis.call('DEL', p .. 'w:' .. b .. ':' .. metrics[m]) end
  end
  if #old > 0 then redis.call('ZREMRANGEBYSCORE', p .. 'buckets', '-inf', '(' .. batch.trim) end
  local old_plans = redis.call('ZRANGEBYSCORE', p .. 'plans', '-inf', '(' .. batch.trim)
  for _, b in ipairs(old_plans) do redis.call('DEL', p .. 'plan:' .. b) end
  if #old_plans > 0 then redis.call('ZREMRANGEBYSCORE', p .. 'plans', '-inf', '(' .. batch.trim) end
end

if not current then redis.call('HSETNX', p .. 'epoch', topic, redis.call('TIME')[1]) end
if gap ~= nil and gap ~= null then redis.call('HSET', p .. 'gaps', topic .. '@' .. gap[1], gap[2] - gap[1]) end
redis.call('HSET', off_key, topic, batch.next)
if batch.max_ts ~= null then redis.call('HSET', p .. 'maxts', topic, batch.max_ts) end
return 1
