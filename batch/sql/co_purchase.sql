-- Table co_purchase: co-purchase pairs (seed 4.2.1: explode, self-join,
-- count). ecomflow's own batch counts them with a dedicated operator
-- (batch/src/cooccur.rs) and is tested against this definition.
WITH ti AS (SELECT DISTINCT transaction_id, product_id FROM transaction_items)
SELECT a.product_id AS product_a, b.product_id AS product_b, COUNT(*) AS together
FROM ti a JOIN ti b ON a.transaction_id = b.transaction_id AND a.product_id < b.product_id
GROUP BY a.product_id, b.product_id
