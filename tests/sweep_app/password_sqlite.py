"""A database server's DSN for the tests, with SQLite behind it: `sqlitepw://user:PASSWORD@/`
+ an absolute path. The dialect drops the credentials before SQLite sees the URL (SQLite
refuses a URL with a user), so a sweep with a password in `hydra.sweeper.storage` really runs
here, as it would against PostgreSQL. `register()` in every process that opens it."""

from __future__ import annotations

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL

SCHEME = "sqlitepw"


class PasswordSQLiteDialect(SQLiteDialect_pysqlite):
    def create_connect_args(self, url: URL):
        # URL.set() keeps a field given None; the named tuple's _replace clears it
        return super().create_connect_args(url._replace(username=None, password=None))


def register() -> None:
    registry.register(SCHEME, __name__, PasswordSQLiteDialect.__name__)


def dsn(user: str, password: str, path: str) -> str:
    return f"{SCHEME}://{user}:{password}@/{path}"
