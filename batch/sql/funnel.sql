-- The funnel: sessions, with views, with a cart, converted, abandoned.
-- "With a cart" is read from the status: ingest refuses a session whose
-- status contradicts its cart (dead letter `inconsistent_status`: a browsed
-- session has an empty cart, a converted or abandoned one a full cart), so
-- for every stored session it equals cardinality(cart_contents) > 0, and
-- the cart's list of structs is not decoded (0.6 s -> 0.2 s on the default
-- shop).
SELECT COUNT(*) AS sessions,
       SUM(CASE WHEN cardinality(viewed_products) > 0 THEN 1 ELSE 0 END) AS with_views,
       SUM(CASE WHEN conversion_status <> 'browsed' THEN 1 ELSE 0 END) AS with_cart,
       SUM(CASE WHEN conversion_status = 'converted' THEN 1 ELSE 0 END) AS converted,
       SUM(CASE WHEN conversion_status = 'abandoned' THEN 1 ELSE 0 END) AS abandoned
FROM sessions
