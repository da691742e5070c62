-- The {n} most frequent pairs of one pair table.
SELECT product_a, product_b, together FROM {table}
ORDER BY together DESC, product_a, product_b LIMIT {n}
