-- Conversion by device type.
SELECT device_type, COUNT(*) AS sessions,
       SUM(CASE WHEN conversion_status = 'converted' THEN 1 ELSE 0 END) AS converted,
       SUM(CASE WHEN conversion_status = 'converted' THEN 1 ELSE 0 END) * 100.0 / COUNT(*)
         AS conversion_pct
FROM sessions GROUP BY device_type ORDER BY device_type
