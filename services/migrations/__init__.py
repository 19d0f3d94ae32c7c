"""Alembic migrations for every backend (SQLite and PostgreSQL).

Run by services.infra.db.create_schema.

Adding a table or column (another branch, later):
1. Declare it in services/infra/tables.py (text columns get COLLATE "C" on PostgreSQL by
   themselves).
2. Generate a revision against a database at head, from the repository root:
       CLAIMLEDGER_DATABASE_URL=sqlite:///var/mig.db .venv/bin/claimledger migrate
       CLAIMLEDGER_DATABASE_URL=sqlite:///var/mig.db .venv/bin/alembic \\
           -c services/migrations/alembic.ini revision --autogenerate -m "what it adds"
   (`... alembic -c services/migrations/alembic.ini check` says whether one is needed),
   then read the new file in services/migrations/versions/: keep it plain `op.*` calls that
   work on both backends (env.py turns on batch mode, so SQLite can ALTER through
   `with op.batch_alter_table(...)`), name it `NNNN_what.py` with `revision = "NNNN"` and
   `down_revision` = the previous head.
3. tests/integration/test_migrations.py checks, on both backends, that the migrated schema
   equals the metadata; it fails until the revision matches the tables.
Revisions only add: services of the previous release may still be running against the
database while the new ones migrate it.
"""
