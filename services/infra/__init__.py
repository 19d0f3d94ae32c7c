"""Infrastructure the three services share: database, Redis, HTTP, logs, keys, metrics, tasks."""
