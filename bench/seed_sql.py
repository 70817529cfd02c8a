"""SQL pieces the benchmarks' seeds share: emptying the app's tables and the column lists of
the submission and task INSERTs (one place to change when a model gains a column)."""

RESET = """
TRUNCATE tapestry_media_webhookevent, tapestry_media_task, tapestry_media_submission
  RESTART IDENTITY CASCADE;
"""

INSERT_SUBMISSIONS = """
INSERT INTO tapestry_media_submission
  (public_id, file, file_size, content_type, media_kind, title, campaign, source, metadata,
   status, file_generation, created_at, updated_at, processed_at)
"""

INSERT_TASKS = """
INSERT INTO tapestry_media_task
  (submission_id, uuid, name, generation, is_primary, kind, input, options, metadata, status,
   raw_status, backend, remote_id, output, output_url, error, progress, priority, attempt,
   attempts, retries, next_attempt_at, created_at, updated_at, submitted_at, started_at,
   finished_at)
"""
