-- Viewed-together pairs, and those never bought together.
SELECT COUNT(*) AS viewed_pairs,
       SUM(CASE WHEN p.product_a IS NULL THEN 1 ELSE 0 END) AS never_bought
FROM co_view v LEFT JOIN co_purchase p
  ON v.product_a = p.product_a AND v.product_b = p.product_b
