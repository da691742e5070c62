-- Customers, share, average CLV, revenue and share of revenue per segment.
SELECT segment, COUNT(*) AS customers,
       COUNT(*) * 100.0 / SUM(COUNT(*)) OVER () AS share_pct,
       AVG(total_clv) AS avg_clv, SUM(total_spent) AS revenue,
       SUM(total_spent) * 100.0 / NULLIF(SUM(SUM(total_spent)) OVER (), 0) AS revenue_share_pct
FROM segments GROUP BY segment
ORDER BY CASE segment WHEN 'VIP' THEN 1 WHEN 'High' THEN 2 WHEN 'Medium' THEN 3 ELSE 4 END
