"""The marketplace's database for the tests: a real PostgreSQL server holding its "User" and "Solution"
tables (tests/marketplace_schema.sql, built from the contract), reached as the README's least-privilege
role, which may read "Solution" and update only its "imageUrl" and "updatedAt".
"""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pg_server import PostgresServer

SCHEMA = Path(__file__).with_name("marketplace_schema.sql").read_text()
ROLE = "aixchange_images"
ROLE_PASSWORD = "mk-pass-" + "q7Zr4Lw9Xc2Vb8Nm"  # a test password (TCP needs it: scram-sha-256)
# The README's grants, verbatim in spirit: read the solutions, write two columns of them, nothing else.
GRANTS = f"""
GRANT SELECT ON "Solution" TO {ROLE};
GRANT UPDATE ("imageUrl", "updatedAt") ON "Solution" TO {ROLE};
"""
COLUMNS = (
    'id, title, description, category, provider, "launchUrl", version, "isPublished", "authorId", tags, '
    '"createdAt", "updatedAt", "publishedAt", metadata, "imageUrl", rating, "sourceCodeUrl", "eventId", status, '
    '"tokenCost", upvotes, downvotes, "totalVotes"'
)


def cuid() -> str:
    return "c" + uuid.uuid4().hex[:24]


class Marketplace:
    """One marketplace database on `server`; `url` is what an operator puts in MARKETPLACE_DATABASE_URL."""

    def __init__(self, server: PostgresServer):
        self.server = server
        self.database = "mk_" + uuid.uuid4().hex[:12]
        server.sql(f"CREATE DATABASE {self.database}")
        with server.connect(self.database) as conn:
            conn.execute(SCHEMA)
            conn.execute(GRANTS)
        self.author = self.add_user()

    @property
    def url(self) -> str:
        """The marketplace's own form of the URL (its app/.env): postgresql://, no driver."""
        return f"postgresql://{ROLE}:{ROLE_PASSWORD}@127.0.0.1:{self.server.port}/{self.database}"

    def execute(self, statement: str, params: Any = None) -> list[tuple]:
        with self.server.connect(self.database) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def add_user(self) -> str:
        user_id = cuid()
        self.execute(
            'INSERT INTO "User" (id, email, name, "updatedAt") VALUES (%s, %s, %s, now() AT TIME ZONE \'UTC\')',
            (user_id, f"{user_id}@example.com", "Author"),
        )
        return user_id

    def add_solution(self, **fields: Any) -> str:
        """A row as the marketplace's forms leave it (null metadata, upper-case status); `fields` override."""
        row: dict[str, Any] = {
            "id": cuid(),
            "title": "Ticket Triage Assistant",
            "description": "Summarises support tickets and routes them to the right team.",
            "category": "Natural Language Processing",
            "provider": "Acme Labs",
            "launchUrl": "https://example.com/triage",
            "authorId": self.author,
            "tags": ["support"],
            "updatedAt": datetime.now(UTC).replace(tzinfo=None),
            "status": "ACTIVE",
            "isPublished": True,
        }
        row.update(fields)
        if isinstance(row.get("metadata"), dict | list):
            row["metadata"] = json.dumps(row["metadata"])
        names = ", ".join(f'"{k}"' for k in row)
        marks = ", ".join("%s" for _ in row)
        self.execute(f'INSERT INTO "Solution" ({names}) VALUES ({marks})', tuple(row.values()))
        return row["id"]

    def row(self, solution_id: str) -> dict[str, Any] | None:
        with self.server.connect(self.database) as conn:
            cur = conn.execute(f'SELECT {COLUMNS} FROM "Solution" WHERE id = %s', (solution_id,))
            values = cur.fetchone()
            return None if values is None else dict(zip([d.name for d in cur.description], values, strict=True))

    def image_url(self, solution_id: str) -> str | None:
        row = self.row(solution_id)
        return None if row is None else row["imageUrl"]

    def set_image(self, solution_id: str, url: str | None) -> None:
        """A change made in the marketplace itself (its admin editing the solution)."""
        self.execute(  # "updatedAt" as Prisma's client writes it: UTC wall time
            'UPDATE "Solution" SET "imageUrl" = %s, "updatedAt" = now() AT TIME ZONE \'UTC\' WHERE id = %s',
            (url, solution_id),
        )

    def snapshot(self) -> dict[str, Any]:
        """Everything but the two columns we may write: must never change under us."""
        rows = self.execute(
            'SELECT id, title, description, category, provider, "launchUrl", version, "isPublished", "authorId", '
            'tags, "createdAt", "publishedAt", metadata, rating, "sourceCodeUrl", "eventId", status, "tokenCost", '
            'upvotes, downvotes, "totalVotes" FROM "Solution" ORDER BY id'
        )
        users = self.execute('SELECT * FROM "User" ORDER BY id')
        schema = self.execute(
            "SELECT table_name, column_name, data_type, column_default, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'public' ORDER BY table_name, column_name"
        )
        return {"solutions": rows, "users": users, "schema": schema}


def start_server() -> PostgresServer:
    server = PostgresServer(password=secrets.token_hex(12)).__enter__()
    server.sql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{ROLE_PASSWORD}'")
    return server
