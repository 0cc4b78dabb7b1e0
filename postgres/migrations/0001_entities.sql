-- Business context and the vault's sealed customers.
-- Times are unix nanoseconds (0 = unset); lists are JSON arrays of ids.
-- Ids use the "C" collation: byte order, as on SQLite and in Go, so both
-- engines list and page in the same order (and B-tree compares are cheap).
CREATE TABLE employees (
	id      TEXT COLLATE "C" PRIMARY KEY CHECK (id <> ''),
	name    TEXT NOT NULL,
	roles   TEXT NOT NULL,
	team    TEXT NOT NULL,
	region  TEXT NOT NULL,
	manager TEXT COLLATE "C" NOT NULL,
	status  TEXT NOT NULL,
	updated BIGINT NOT NULL
);
CREATE TABLE customers (
	id         TEXT COLLATE "C" PRIMARY KEY CHECK (id <> ''),
	region     TEXT NOT NULL,
	key_id     TEXT NOT NULL CHECK (key_id <> ''),
	data_key   BYTEA NOT NULL,
	ciphertext BYTEA NOT NULL,
	honey      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE TABLE sellers (
	id              TEXT COLLATE "C" PRIMARY KEY CHECK (id <> ''),
	name            TEXT NOT NULL,
	account_manager TEXT COLLATE "C" NOT NULL,
	category        TEXT NOT NULL
);
CREATE INDEX sellers_manager ON sellers (account_manager);
CREATE TABLE orders (
	id          TEXT COLLATE "C" PRIMARY KEY CHECK (id <> ''),
	customer    TEXT COLLATE "C" NOT NULL,
	seller      TEXT COLLATE "C" NOT NULL,
	placed_at   BIGINT NOT NULL,
	total_cents BIGINT NOT NULL
);
CREATE INDEX orders_customer ON orders (customer, placed_at);
CREATE TABLE reviews (
	id         TEXT COLLATE "C" PRIMARY KEY CHECK (id <> ''),
	customer   TEXT COLLATE "C" NOT NULL,
	seller     TEXT COLLATE "C" NOT NULL,
	product    TEXT NOT NULL,
	rating     BIGINT NOT NULL CHECK (rating BETWEEN 1 AND 5),
	created_at BIGINT NOT NULL
);
CREATE INDEX reviews_customer ON reviews (customer, created_at);
CREATE INDEX reviews_seller ON reviews (seller, rating);
CREATE TABLE cases (
	id        TEXT COLLATE "C" PRIMARY KEY CHECK (id <> ''),
	assignee  TEXT COLLATE "C" NOT NULL,
	status    TEXT NOT NULL,
	customers TEXT NOT NULL,
	orders    TEXT NOT NULL,
	sellers   TEXT NOT NULL,
	opened_by TEXT NOT NULL,
	opened_at BIGINT NOT NULL,
	closed_at BIGINT NOT NULL
);
CREATE INDEX cases_assignee ON cases (assignee, status, opened_at);
CREATE TABLE sales (
	seller        TEXT COLLATE "C" NOT NULL CHECK (seller <> ''),
	day           TEXT COLLATE "C" NOT NULL CHECK (length(day) = 10),
	units         BIGINT NOT NULL,
	revenue_cents BIGINT NOT NULL,
	PRIMARY KEY (seller, day)
);
