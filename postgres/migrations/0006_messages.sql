-- Sellers' messages to customers (metadata only), for leak correlation.
CREATE TABLE messages (
	id       TEXT PRIMARY KEY,
	seller   TEXT NOT NULL,
	customer TEXT NOT NULL,
	sent_at  BIGINT NOT NULL,
	channel  TEXT NOT NULL
);
CREATE INDEX messages_seller ON messages (seller, sent_at);
CREATE INDEX messages_customer ON messages (customer, sent_at);
