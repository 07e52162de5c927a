-- Standard questions over the batch job's tables, in Spark SQL.
-- Views: completions (the job's --output) and job_runs (OUTPUT/_job_runs, or --runs-table).
-- Run all of it:
--   submit/sql.sh --view completions=OUT --view job_runs=OUT/_job_runs --file notebooks/batch-inference.sql
-- Each statement ends with ';' at the end of a line; NotebooksTest runs every one against a real run.

-- ## 1. How did the rows end? (stop: eos or stop string; length: --max-new-tokens; error: see error_code)
SELECT finish_reason, error_code, count(*) AS rows
FROM completions
GROUP BY finish_reason, error_code
ORDER BY rows DESC;

-- ## 2. Why did rows fail? One example message per error code.
SELECT error_code, count(*) AS rows, min(error_message) AS example
FROM completions
WHERE finish_reason = 'error'
GROUP BY error_code
ORDER BY rows DESC;

-- ## 3. Throughput per run, newest first.
SELECT run_id, status, started_at, rows, skipped_rows, ok_rows, error_rows, requests, deduplicated_rows,
       completion_tokens, round(tokens_per_s, 1) AS tokens_per_s, round(wall_s, 1) AS wall_s,
       model_loads, executors, precision, batch_size
FROM job_runs
ORDER BY started_at DESC;

-- ## 4. Latency per run: median and tail of the answered rows.
SELECT run_id, count(*) AS rows,
       round(percentile(latency_ms, 0.5), 1) AS latency_p50_ms,
       round(percentile(latency_ms, 0.99), 1) AS latency_p99_ms,
       round(percentile(time_to_first_token_ms, 0.5), 1) AS ttft_p50_ms
FROM completions
WHERE finish_reason <> 'error'
GROUP BY run_id
ORDER BY run_id;

-- ## 5. Completion length by prompt length (buckets of 32 tokens).
SELECT floor(prompt_tokens / 32) * 32 AS prompt_tokens_from, count(*) AS rows,
       round(avg(completion_tokens), 1) AS avg_completion_tokens,
       round(avg(CASE WHEN finish_reason = 'length' THEN 1.0 ELSE 0.0 END), 2) AS share_cut_at_limit
FROM completions
WHERE finish_reason <> 'error'
GROUP BY 1
ORDER BY 1;

-- ## 6. Load balance: rows and tokens per executor and device.
SELECT executor_id, device, precision, count(*) AS rows, sum(completion_tokens) AS completion_tokens
FROM completions
WHERE finish_reason <> 'error'
GROUP BY executor_id, device, precision
ORDER BY rows DESC;

-- ## 7. Integrity: ids answered more than once (expect no rows).
SELECT id, count(*) AS copies
FROM completions
GROUP BY id
HAVING count(*) > 1;
