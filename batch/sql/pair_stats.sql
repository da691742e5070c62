-- Totals of one pair table ({table}: co_purchase or co_view).
SELECT COUNT(*) AS unique_pairs, COALESCE(SUM(together), 0) AS total,
       COALESCE(AVG(CAST(together AS DOUBLE)), 0.0) AS avg_per_pair
FROM {table}
