-- Products of product_rank that {rule} picks, by {order}, at most 10, and
-- how many it picks in all (picked).
SELECT product_id, name, sessions_viewed, units_sold, conversion_rate,
       COUNT(*) OVER () AS picked
FROM product_rank WHERE {rule} ORDER BY {order}, product_id LIMIT 10
