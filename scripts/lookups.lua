-- wrk script: lookups spread over the catalog and the users, as a shop's
-- product pages would ask them. Usage (against `replay --keep-serving` or
-- `serve`):
--   wrk -t1 -c8 -d30s --latency -s scripts/lookups.lua http://127.0.0.1:8080
-- PRODUCTS and USERS (environment) bound the ids drawn (defaults: the
-- default shop's 5,000 and 10,000).
local products = tonumber(os.getenv("PRODUCTS") or "5000")
local users = tonumber(os.getenv("USERS") or "10000")
local n = 0

request = function()
  n = n + 1
  -- A fixed stride walks the ids in a scattered, repeatable order.
  local k = n % 10
  if k < 6 then
    local p = (n * 7919) % products + 1
    return wrk.format("GET", string.format("/v1/products/prod_%05d/bought-together?k=10", p))
  elseif k < 9 then
    local p = (n * 104729) % products + 1
    return wrk.format("GET", string.format("/v1/products/prod_%05d/viewed-together?k=10", p))
  else
    local u = (n * 7919) % users + 1
    return wrk.format("GET", string.format("/v1/users/user_%06d/engagement", u))
  end
end
