-- The funnel: sessions, with views, with a cart, converted, abandoned.
SELECT COUNT(*) AS sessions,
       SUM(CASE WHEN cardinality(viewed_products) > 0 THEN 1 ELSE 0 END) AS with_views,
       SUM(CASE WHEN cardinality(cart_contents) > 0 THEN 1 ELSE 0 END) AS with_cart,
       SUM(CASE WHEN conversion_status = 'converted' THEN 1 ELSE 0 END) AS converted,
       SUM(CASE WHEN conversion_status = 'abandoned' THEN 1 ELSE 0 END) AS abandoned
FROM sessions
