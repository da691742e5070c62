-- Removed records by source and reason.
SELECT source_topic AS source, reason_code AS reason, COUNT(*) AS removed
FROM dead_letters GROUP BY source_topic, reason_code
ORDER BY source_topic, removed DESC, reason_code
