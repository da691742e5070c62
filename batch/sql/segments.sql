-- Table segments: users by CLV rank; the first {n_vip} are VIP, up to
-- {n_high} High, up to {n_medium} Medium. RANK() gives tied users the same
-- rank, so a tie at a threshold puts all of them in the better segment;
-- a user who never bought is Low whatever the rank (on a small shop the
-- users at CLV 0 can tie across a threshold).
SELECT *, CASE WHEN total_transactions = 0 THEN 'Low'
               WHEN clv_rank <= {n_vip} THEN 'VIP'
               WHEN clv_rank <= {n_high} THEN 'High'
               WHEN clv_rank <= {n_medium} THEN 'Medium'
               ELSE 'Low' END AS segment
FROM (SELECT *, RANK() OVER (ORDER BY total_clv DESC) AS clv_rank FROM clv)
