-- Table co_view: co-view pairs (seed 4.2.2), as co_purchase.sql on viewed
-- products.
WITH sv AS (SELECT DISTINCT session_id, product_id FROM session_views)
SELECT a.product_id AS product_a, b.product_id AS product_b, COUNT(*) AS together
FROM sv a JOIN sv b ON a.session_id = b.session_id AND a.product_id < b.product_id
GROUP BY a.product_id, b.product_id
