-- Table product_rank: products viewed in at least {min_views} sessions
-- (sales or not), with their views' and conversion's percentile among
-- them: the base of the conversion gaps and the niche products.
-- product_sales is product_sales.sql.
WITH perf AS (
    SELECT p.product_id, p.name, pv.sessions_viewed, COALESCE(ps.units_sold, 0) AS units_sold,
           CAST(COALESCE(ps.units_sold, 0) AS DOUBLE) / pv.sessions_viewed * 100 AS conversion_rate
    FROM products p
    JOIN product_views pv ON p.product_id = pv.product_id
    LEFT JOIN product_sales ps ON p.product_id = ps.product_id
    WHERE pv.sessions_viewed >= {min_views}
)
SELECT *, PERCENT_RANK() OVER (ORDER BY sessions_viewed) AS views_rank,
          PERCENT_RANK() OVER (ORDER BY conversion_rate) AS conversion_rank
FROM perf
