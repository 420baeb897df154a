"""Hot-path SQL as PostgreSQL prepared statements: parsed and planned once per connection, not on every call.

Every bearer-token request looks its token up, and the CI gate (`GET /api/v1/status`) computes its inputs stamp,
thousands of times an hour with the same statements. PostgreSQL spends longer planning the stamp statement than
running it (about 0.3 ms against 0.15 ms), and the database shares the machine's cores with the application.
Django's own cursors bind parameters on the client and never prepare; `fetchone` here binds on the server and asks
psycopg to prepare, through Django's cursor wrapper (thread check, query logging and execute wrappers still apply).

Behind a connection pooler in transaction mode that cannot keep prepared statements (PgBouncer before 1.21, or
without `max_prepared_statements`), set CUSTODY_DB_PREPARED_STATEMENTS=0: the same statements then run unprepared.
"""

from __future__ import annotations

import psycopg
from django.db import connection


class _ServerBoundCursor(psycopg.Cursor):
    """Server-side binding, prepared on first use unless `prepare` is False. psycopg prepares nothing while the
    connection's prepare_threshold is None, which is what CUSTODY_DB_PREPARED_STATEMENTS=0 sets (settings.py)."""

    prepare = True

    def execute(self, query, params=None, *, prepare=None, binary=None):
        return super().execute(query, params, prepare=self.prepare, binary=binary)


def fetchone(sql: str, params: dict | list) -> tuple | None:
    """Run one statement and return its first row, prepared on PostgreSQL (see the module's note)."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchone()
    connection.ensure_connection()
    connection.validate_thread_sharing()
    raw = _ServerBoundCursor(connection.connection)
    if connection.queries_logged:
        # The query log (DEBUG, or a test counting queries) shows the statement psycopg sent, and psycopg keeps no
        # text for a prepared execution: while the log is on, the statement runs unprepared.
        raw.prepare = False
        cursor = connection.make_debug_cursor(raw)
    else:
        cursor = connection.make_cursor(raw)
    with cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()
