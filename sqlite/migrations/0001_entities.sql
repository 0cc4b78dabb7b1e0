-- Business context and the vault's sealed customers.
-- Times are unix nanoseconds (0 = unset); lists are JSON arrays of ids.
-- STRICT makes SQLite refuse a value of the wrong type instead of storing
-- it; WITHOUT ROWID keeps each table in one B-tree ordered by its text key,
-- so an upsert touches one tree less.
CREATE TABLE employees (
	id      TEXT NOT NULL PRIMARY KEY CHECK (id <> ''),
	name    TEXT NOT NULL,
	roles   TEXT NOT NULL,
	team    TEXT NOT NULL,
	region  TEXT NOT NULL,
	manager TEXT NOT NULL,
	status  TEXT NOT NULL,
	updated INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TABLE customers (
	id         TEXT NOT NULL PRIMARY KEY CHECK (id <> ''),
	region     TEXT NOT NULL,
	key_id     TEXT NOT NULL CHECK (key_id <> ''),
	data_key   BLOB NOT NULL,
	ciphertext BLOB NOT NULL,
	honey      INTEGER NOT NULL DEFAULT 0 CHECK (honey IN (0, 1))
) STRICT, WITHOUT ROWID;
CREATE TABLE sellers (
	id              TEXT NOT NULL PRIMARY KEY CHECK (id <> ''),
	name            TEXT NOT NULL,
	account_manager TEXT NOT NULL,
	category        TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX sellers_manager ON sellers (account_manager);
CREATE TABLE orders (
	id          TEXT NOT NULL PRIMARY KEY CHECK (id <> ''),
	customer    TEXT NOT NULL,
	seller      TEXT NOT NULL,
	placed_at   INTEGER NOT NULL,
	total_cents INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX orders_customer ON orders (customer, placed_at);
CREATE TABLE reviews (
	id         TEXT NOT NULL PRIMARY KEY CHECK (id <> ''),
	customer   TEXT NOT NULL,
	seller     TEXT NOT NULL,
	product    TEXT NOT NULL,
	rating     INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
	created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX reviews_customer ON reviews (customer, created_at);
CREATE INDEX reviews_seller ON reviews (seller, rating);
CREATE TABLE cases (
	id        TEXT NOT NULL PRIMARY KEY CHECK (id <> ''),
	assignee  TEXT NOT NULL,
	status    TEXT NOT NULL,
	customers TEXT NOT NULL,
	orders    TEXT NOT NULL,
	sellers   TEXT NOT NULL,
	opened_by TEXT NOT NULL,
	opened_at INTEGER NOT NULL,
	closed_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX cases_assignee ON cases (assignee, status, opened_at);
CREATE TABLE sales (
	seller        TEXT NOT NULL CHECK (seller <> ''),
	day           TEXT NOT NULL CHECK (length(day) = 10),
	units         INTEGER NOT NULL,
	revenue_cents INTEGER NOT NULL,
	PRIMARY KEY (seller, day)
) STRICT, WITHOUT ROWID;
