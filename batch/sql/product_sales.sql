-- Table product_sales: per product sold, the units and the revenue (seed
-- 4.3.1): what product_performance.sql and product_rank.sql join, made a
-- table once instead of aggregated again by each of their queries.
SELECT product_id, SUM(quantity) AS units_sold, SUM(revenue) AS total_revenue
FROM transaction_items GROUP BY product_id
