-- Product performance (seed 4.3.1), with a floor on views ({min_views}) so
-- that a product seen twice and bought once does not top the list; the
-- first {limit} by {order_by}. product_sales is product_sales.sql.
SELECT p.product_id, p.name, ps.units_sold, ps.total_revenue, pv.sessions_viewed,
       (CAST(ps.units_sold AS DOUBLE) / pv.sessions_viewed) * 100 AS conversion_rate
FROM products p
JOIN product_sales ps ON p.product_id = ps.product_id
JOIN product_views pv ON p.product_id = pv.product_id
WHERE pv.sessions_viewed >= {min_views}
ORDER BY {order_by}, p.product_id
LIMIT {limit}
