-- The late-data horizon of the scoring rollups (scoring/daily.py `horizon`), visible to any role.
-- It used to come from pg_stat_activity.xact_start, which PostgreSQL hides from roles without
-- pg_read_all_stats: a scoring role apart from the ingest role saw no open transaction, and rows a
-- long ingest transaction committed later were never summarised. Now each check records a mark:
-- its transaction id (pg_current_xact_id(), as bigint) and its now(), taken before that id was
-- assigned. Any transaction with a larger id started writing after `at`; the horizon is the newest
-- mark older than every transaction still running in the database (their ids, unlike their start
-- times, pg_stat_activity.backend_xid shows to every role).
CREATE TABLE IF NOT EXISTS scoring_horizon_mark (
    xid  bigint PRIMARY KEY,
    at   timestamptz NOT NULL
);
-- The first mark: transactions that start after this migration have a bound from the start.
INSERT INTO scoring_horizon_mark (xid, at) VALUES (pg_current_xact_id()::text::bigint, now())
ON CONFLICT (xid) DO NOTHING;
