-- Revenue per day.
SELECT date, COUNT(*) AS transactions, SUM(total) AS revenue
FROM transactions GROUP BY date ORDER BY date
