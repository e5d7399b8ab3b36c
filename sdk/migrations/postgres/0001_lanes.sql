-- AMP voucher store, PostgreSQL schema 1 (sdk/src/store/postgres.rs).
--
-- Applied once per database by the store when it connects, inside a
-- transaction holding an advisory lock (so replicas starting together apply
-- it once), and recorded in amp_schema_migrations. Never edit a migration
-- that has shipped: add the next numbered file instead.
--
-- Unsigned 64-bit values (generation, seq, amounts) are stored by their bits
-- in bigint, as in the SQLite store: values above 2^63 - 1 read as negative
-- in SQL, and the store converts them back. Keys are the 32 raw bytes.

-- One row per incarnation of a lane: the same columns as the SQLite store,
-- plus the settlement lease.
CREATE TABLE amp_lanes (
    lane bytea NOT NULL CHECK (length(lane) = 32),
    generation bigint NOT NULL,
    channel bytea NOT NULL CHECK (length(channel) = 32),
    delegate bytea CHECK (length(delegate) = 32),
    signer bytea NOT NULL CHECK (length(signer) = 32),
    -- Highest seq accepted.
    last_seq bigint NOT NULL,
    -- Cumulative amount charged.
    owed bigint NOT NULL,
    -- Cumulative amount known to be settled on-chain.
    settled bigint NOT NULL,
    -- What settling the best voucher would pay now (a copy, for the index).
    unsettled bigint NOT NULL,
    -- The best voucher (68 bytes) and its ed25519 signature (64 bytes).
    voucher bytea CHECK (length(voucher) = 68),
    signature bytea CHECK (length(signature) = 64),
    closed boolean NOT NULL,
    -- Settlement leadership: the replica (amp_replicas.id) settling this lane
    -- and until when; another replica may take the lane over after that.
    settler bigint,
    settler_until timestamptz,
    PRIMARY KEY (lane, generation),
    CHECK ((voucher IS NULL) = (signature IS NULL))
);

-- What the settlers look for.
CREATE INDEX amp_lanes_unsettled ON amp_lanes (lane, generation)
    WHERE unsettled <> 0 AND NOT closed;
-- Every lane of a channel (a cooperative close settles its delegations).
CREATE INDEX amp_lanes_channel ON amp_lanes (channel);

-- Every store connected to the database (one per server replica). A replica
-- is alive while expires_at is ahead; it pushes expires_at forward as it runs.
CREATE TABLE amp_replicas (
    id bigserial PRIMARY KEY,
    label text,
    started_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);

-- What metered requests in flight have reserved, per lane and replica. Only
-- live replicas' reservations count: a replica that dies takes its requests,
-- and so its reservations, with it.
CREATE TABLE amp_reservations (
    lane bytea NOT NULL,
    generation bigint NOT NULL,
    replica bigint NOT NULL,
    reserved bigint NOT NULL CHECK (reserved > 0),
    PRIMARY KEY (lane, generation, replica)
);
CREATE INDEX amp_reservations_replica ON amp_reservations (replica);
