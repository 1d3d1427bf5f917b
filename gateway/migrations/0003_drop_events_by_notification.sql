-- No query looks events up by notification (a notification is found by its own id, its events by
-- theirs), and the foreign key needs the index only to delete notifications, which the ledger never
-- does. Its keys are random, so every ingested event wrote one more B-tree page of its own: on
-- SQLite about a quarter of the ledger writer's WAL volume.
--
-- Portable SQL, like 0001.

DROP INDEX IF EXISTS events_by_notification;
