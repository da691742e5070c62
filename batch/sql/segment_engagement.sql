-- Engagement per segment: the seed's score, sessions, session conversion
-- and order value of the average customer in each.
SELECT segment, COUNT(*) AS customers, AVG(engagement_score) AS avg_engagement,
       AVG(total_sessions) AS avg_sessions,
       SUM(converted_sessions) * 100.0 / NULLIF(SUM(total_sessions), 0) AS session_conversion_pct,
       AVG(avg_order_value) AS avg_order_value
FROM segments GROUP BY segment
ORDER BY CASE segment WHEN 'VIP' THEN 1 WHEN 'High' THEN 2 WHEN 'Medium' THEN 3 ELSE 4 END
