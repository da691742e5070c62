-- Table clv: the seed's CLV (section 5.2) per user, over the rows {filter}
-- keeps of transactions and sessions (TRUE for all). LEFT joins keep every
-- user; a user without transactions or sessions has zeros, not NULLs.
-- The weights are written as doubles: a plain 0.3 is a DECIMAL in Spark,
-- and both engines must compute (and rank) the same values.
WITH transaction_metrics AS (
    SELECT user_id, COUNT(transaction_id) AS total_transactions,
           SUM(total) AS total_spent, AVG(total) AS avg_order_value
    FROM transactions WHERE {filter} GROUP BY user_id
), session_metrics AS (
    SELECT user_id, COUNT(session_id) AS total_sessions,
           SUM(CASE WHEN conversion_status = 'converted' THEN 1 ELSE 0 END) AS converted_sessions,
           AVG(duration_seconds) AS avg_session_duration,
           SUM(cardinality(viewed_products)) AS total_products_viewed
    FROM sessions WHERE {filter} GROUP BY user_id
), integrated AS (
    SELECT u.user_id,
           COALESCE(t.total_transactions, 0) AS total_transactions,
           COALESCE(t.total_spent, CAST(0 AS DOUBLE)) AS total_spent,
           COALESCE(t.avg_order_value, CAST(0 AS DOUBLE)) AS avg_order_value,
           COALESCE(s.total_sessions, 0) AS total_sessions,
           COALESCE(s.converted_sessions, 0) AS converted_sessions,
           COALESCE(s.total_products_viewed, 0) AS total_products_viewed,
           s.avg_session_duration
    FROM users u
    LEFT JOIN transaction_metrics t ON u.user_id = t.user_id
    LEFT JOIN session_metrics s ON u.user_id = s.user_id
), scored AS (
    SELECT *, total_sessions * CAST(0.3 AS DOUBLE) + converted_sessions * CAST(0.5 AS DOUBLE)
              + total_products_viewed / CAST(100 AS DOUBLE) * CAST(0.2 AS DOUBLE)
              AS engagement_score
    FROM integrated
), valued AS (
    SELECT *, avg_order_value * engagement_score * CAST(0.5 AS DOUBLE) AS predicted_future_value
    FROM scored
)
SELECT *, total_spent + predicted_future_value AS total_clv FROM valued
