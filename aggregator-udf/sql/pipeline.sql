-- ecomflow on Arroyo: "bought together" over a 30-day window sliding by a
-- day, scored with the aggregator's own functions (the ecomflow-udf plugin),
-- read from the same Kafka topics the aggregator reads.
--
-- Deploy: see aggregator-udf/README.md. Replace kafka:9092 with your
-- brokers. Records are ecomflow envelopes ({"v":1,"kind":...,"data":{...}});
-- the producer stamps each Kafka record with the event time, which Arroyo
-- uses as the event time of a Kafka source; the watermark allows 1 hour of
-- lateness, like the aggregator's default --lateness.

CREATE TABLE transactions_raw (
    value TEXT
) WITH (
    connector = 'kafka',
    bootstrap_servers = 'kafka:9092',
    topic = 'transactions',
    type = 'source',
    format = 'json',
    'json.unstructured' = 'true',
    'source.offset' = 'earliest',
    'source.read_mode' = 'read_committed'
);

CREATE TABLE sessions_raw (
    value TEXT
) WITH (
    connector = 'kafka',
    bootstrap_servers = 'kafka:9092',
    topic = 'sessions',
    type = 'source',
    format = 'json',
    'json.unstructured' = 'true',
    'source.offset' = 'earliest'
);

CREATE TABLE bought_together_sink (
    window_end TIMESTAMP,
    product_a TEXT,
    product_b TEXT,
    together BIGINT,
    llr DOUBLE,
    lift DOUBLE,
    confidence DOUBLE
) WITH (
    connector = 'kafka',
    bootstrap_servers = 'kafka:9092',
    topic = 'bought-together',
    type = 'sink',
    format = 'json'
);

-- One row per transaction: its distinct items and its pairs (capped at 50
-- items, as in the aggregator).
CREATE VIEW baskets AS
SELECT
    extract_json_string(value, '$.data.transaction_id') AS basket_id,
    basket_items(value, 50) AS items,
    basket_pairs(value, 50) AS pairs
FROM transactions_raw
WHERE extract_json_string(value, '$.kind') = 'transaction';

CREATE VIEW pair_counts AS
SELECT
    hop(INTERVAL '1 day', INTERVAL '30 days') AS window,
    split_part(pair, '|', 1) AS product_a,
    split_part(pair, '|', 2) AS product_b,
    COUNT(*) AS together
FROM (SELECT unnest(string_to_array(pairs, ',')) AS pair FROM baskets WHERE pairs <> '')
GROUP BY 1, 2, 3;

CREATE VIEW item_counts AS
SELECT
    hop(INTERVAL '1 day', INTERVAL '30 days') AS window,
    item,
    COUNT(*) AS baskets_with_item
FROM (SELECT unnest(string_to_array(items, ',')) AS item FROM baskets WHERE items <> '')
GROUP BY 1, 2;

CREATE VIEW basket_counts AS
SELECT
    hop(INTERVAL '1 day', INTERVAL '30 days') AS window,
    COUNT(*) AS baskets
FROM baskets
GROUP BY 1;

INSERT INTO bought_together_sink
SELECT
    p.window.end AS window_end,
    p.product_a,
    p.product_b,
    p.together,
    pair_llr(p.together, a.baskets_with_item, b.baskets_with_item, n.baskets) AS llr,
    pair_lift(p.together, a.baskets_with_item, b.baskets_with_item, n.baskets) AS lift,
    pair_confidence(p.together, a.baskets_with_item, b.baskets_with_item, n.baskets) AS confidence
FROM pair_counts p
JOIN item_counts a ON p.window = a.window AND p.product_a = a.item
JOIN item_counts b ON p.window = b.window AND p.product_b = b.item
JOIN basket_counts n ON p.window = n.window;

-- Per-user engagement over the same window, with the seed's score.
CREATE TABLE engagement_sink (
    window_end TIMESTAMP,
    user_id TEXT,
    sessions BIGINT,
    converted BIGINT,
    viewed BIGINT,
    abandoned BIGINT,
    score DOUBLE
) WITH (
    connector = 'kafka',
    bootstrap_servers = 'kafka:9092',
    topic = 'engagement',
    type = 'sink',
    format = 'json'
);

INSERT INTO engagement_sink
SELECT
    window.end AS window_end,
    user_id,
    sessions,
    converted,
    viewed,
    abandoned,
    engagement_score(sessions, converted, viewed) AS score
FROM (
    SELECT
        hop(INTERVAL '1 day', INTERVAL '30 days') AS window,
        extract_json_string(value, '$.data.user_id') AS user_id,
        COUNT(*) AS sessions,
        SUM(CASE WHEN extract_json_string(value, '$.data.conversion_status') = 'converted'
                 THEN 1 ELSE 0 END) AS converted,
        SUM(CASE WHEN extract_json_string(value, '$.data.conversion_status') = 'abandoned'
                 THEN 1 ELSE 0 END) AS abandoned,
        SUM(basket_size(value, 1000000)) AS viewed
    FROM sessions_raw
    WHERE extract_json_string(value, '$.kind') = 'session'
    GROUP BY 1, 2
);
