-- Table product_views: per product, the sessions that viewed it (seed
-- 4.3.1). ecomflow's batch takes it from the co-view operator's pass and
-- is tested against this.
SELECT product_id, COUNT(DISTINCT session_id) AS sessions_viewed
FROM session_views GROUP BY product_id
