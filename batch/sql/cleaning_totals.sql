-- Cleaning statistics: records per source before and after, removed by reason.
WITH removed AS (SELECT source_topic, COUNT(*) AS removed FROM dead_letters GROUP BY source_topic),
kept AS (
  SELECT 'transactions' AS source_topic, COUNT(*) AS kept FROM transactions
  UNION ALL SELECT 'sessions', COUNT(*) FROM sessions
  UNION ALL SELECT 'catalog', (SELECT COUNT(*) FROM users) + (SELECT COUNT(*) FROM products)
                              + (SELECT COUNT(*) FROM categories))
SELECT k.source_topic AS source, k.kept + COALESCE(r.removed, 0) AS before,
       k.kept AS after, COALESCE(r.removed, 0) AS removed,
       CAST(COALESCE(r.removed, 0) AS DOUBLE) * 100.0
         / NULLIF(k.kept + COALESCE(r.removed, 0), 0) AS removed_pct
FROM kept k LEFT JOIN removed r ON k.source_topic = r.source_topic
ORDER BY before DESC
