-- Business context and the vault's sealed customers.
CREATE TABLE employees (
	id      TEXT PRIMARY KEY,
	name    TEXT NOT NULL,
	roles   TEXT NOT NULL,       -- JSON array
	team    TEXT NOT NULL,
	region  TEXT NOT NULL,
	manager TEXT NOT NULL,
	status  TEXT NOT NULL,
	updated BIGINT NOT NULL     -- unix nanoseconds
);
CREATE TABLE customers (
	id         TEXT PRIMARY KEY,
	region     TEXT NOT NULL,
	key_id     TEXT NOT NULL,
	data_key   BYTEA NOT NULL,    -- wrapped data key
	ciphertext BYTEA NOT NULL,    -- sealed PII
	honey      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE sellers (
	id              TEXT PRIMARY KEY,
	name            TEXT NOT NULL,
	account_manager TEXT NOT NULL,
	category        TEXT NOT NULL
);
CREATE TABLE orders (
	id          TEXT PRIMARY KEY,
	customer    TEXT NOT NULL,
	seller      TEXT NOT NULL,
	placed_at   BIGINT NOT NULL,
	total_cents BIGINT NOT NULL
);
CREATE INDEX orders_customer ON orders (customer);
CREATE INDEX orders_seller ON orders (seller);
CREATE TABLE reviews (
	id         TEXT PRIMARY KEY,
	customer   TEXT NOT NULL,
	seller     TEXT NOT NULL,
	product    TEXT NOT NULL,
	rating     BIGINT NOT NULL,
	created_at BIGINT NOT NULL
);
CREATE INDEX reviews_customer ON reviews (customer);
CREATE INDEX reviews_seller ON reviews (seller, rating);
CREATE TABLE cases (
	id        TEXT PRIMARY KEY,
	assignee  TEXT NOT NULL,
	status    TEXT NOT NULL,
	customers TEXT NOT NULL,     -- JSON array
	orders    TEXT NOT NULL,     -- JSON array
	sellers   TEXT NOT NULL,     -- JSON array
	opened_by TEXT NOT NULL,
	opened_at BIGINT NOT NULL,
	closed_at BIGINT NOT NULL
);
CREATE INDEX cases_assignee ON cases (assignee, status);
CREATE TABLE sales (
	seller        TEXT NOT NULL,
	day           TEXT NOT NULL,
	units         BIGINT NOT NULL,
	revenue_cents BIGINT NOT NULL,
	PRIMARY KEY (seller, day)
);
