"""The same endpoints in Flask, as the reference systems serve them, for api-service's load benchmark.

Run under gunicorn (sync workers), e.g.  gunicorn -w 5 -b 127.0.0.1:5000 flask_app:app
Environment: FLASK_DB (SQLite file), UPLOAD_BUCKET, AWS_ENDPOINT_URL and the usual AWS variables.
"""

import math
import os
import sqlite3
import sys
import uuid

import boto3
from botocore.config import Config
from flask import Flask, g, jsonify, request

# Python 3.11 refuses to print integers over 4300 digits unless told otherwise.
sys.set_int_max_str_digits(0)

DB = os.environ.get("FLASK_DB", "flask_books.db")
BUCKET = os.environ.get("UPLOAD_BUCKET", "bench")
FACTORIAL_MAX = 100_000

app = Flask(__name__)
s3 = boto3.client(
    "s3",
    endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
    config=Config(s3={"addressing_style": "path"}),
)


def db():
    if "db" not in g:
        g.db = sqlite3.connect(DB)
        g.db.row_factory = sqlite3.Row
    return g.db


@app.teardown_appcontext
def close_db(_exc):
    conn = g.pop("db", None)
    if conn is not None:
        conn.close()


def init_db():
    conn = sqlite3.connect(DB)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS books (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT NOT NULL,"
        " author TEXT NOT NULL, isbn TEXT NOT NULL UNIQUE, published_year INTEGER,"
        " created_at TEXT NOT NULL, updated_at TEXT NOT NULL)"
    )
    if conn.execute("SELECT COUNT(*) FROM books").fetchone()[0] == 0:
        for n in range(50):
            conn.execute(
                "INSERT INTO books (title, author, isbn, published_year, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, datetime('now'), datetime('now'))",
                (f"Book {n}", "Ada Lovelace", f"isbn-{n}", 1843),
            )
    conn.commit()
    conn.close()


init_db()


def error(status, code, message):
    return jsonify({"error": {"code": code, "message": message}}), status


@app.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@app.get("/api/v1/factorial")
def factorial():
    raw = request.args.get("number", "")
    if not raw.isdigit() or int(raw) > FACTORIAL_MAX:
        return error(400, "bad_request", "number must be an integer from 0 to 100000")
    n = int(raw)
    return jsonify({"number": n, "factorial": str(math.factorial(n))})


@app.get("/api/v1/books")
def list_books():
    try:
        limit = int(request.args.get("limit", 20))
        offset = int(request.args.get("offset", 0))
    except ValueError:
        return error(400, "bad_request", "bad limit or offset")
    if not 1 <= limit <= 100 or offset < 0:
        return error(400, "bad_request", "bad limit or offset")
    rows = db().execute("SELECT * FROM books ORDER BY id LIMIT ? OFFSET ?", (limit + 1, offset)).fetchall()
    items = [dict(r) for r in rows[:limit]]
    more = len(rows) > limit
    return jsonify({"items": items, "limit": limit, "offset": offset, "next_offset": offset + limit if more else None})


@app.get("/api/v1/books/<int:book_id>")
def read_book(book_id):
    row = db().execute("SELECT * FROM books WHERE id = ?", (book_id,)).fetchone()
    if row is None:
        return error(404, "not_found", "book not found")
    return jsonify(dict(row))


@app.post("/api/v1/uploads")
def upload():
    file = request.files.get("file")
    if file is None:
        return error(422, "validation_failed", "multipart field `file` is required")
    key = f"uploads/{uuid.uuid4()}"
    s3.upload_fileobj(file, BUCKET, key)
    return jsonify({"key": key}), 201
