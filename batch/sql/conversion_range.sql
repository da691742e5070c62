-- Lowest and highest conversion rate among the ranked products (the
-- parameter "ranked" is product_performance.sql with no limit).
SELECT MIN(conversion_rate) AS lo, MAX(conversion_rate) AS hi FROM ({ranked}) ranked
