-- Total spent of every user with at least one transaction, lowest first.
SELECT total_spent FROM clv WHERE total_transactions > 0 ORDER BY total_spent
