//! A store in PostgreSQL, which several server replicas share: run as many
//! copies of the service as you like behind a load balancer, all pointing at
//! one database.
//!
//! * **Per-lane serialisation is the database's.** An update runs in one
//!   transaction that locks the lane's row (`SELECT … FOR UPDATE`), runs the
//!   update on what it read, writes and commits; a request for the same lane
//!   on another replica waits for the lock and then sees the committed state.
//!   No seq is accepted twice, nothing is counted twice, whichever replica a
//!   request reaches.
//! * **One settler per lane.** Before settling, a replica's settler claims the
//!   lanes it wants ([`VoucherStore::claim`](crate::store::VoucherStore::claim)): a conditional `UPDATE` sets the
//!   lane's `settler` to the replica and `settler_until` to the database's
//!   clock plus the lease, only where no other live lease exists. It releases
//!   them when done; if it dies, the lease runs out and another replica's
//!   settler takes the lanes over. (Settling twice could never pay twice —
//!   the program settles cumulatively — the lease only avoids the wasted
//!   transaction.)
//! * **Metered requests in flight** reserve part of a lane's credit. The
//!   reservations are kept per replica, and only those of live replicas (whose
//!   heartbeat in `amp_replicas` has not run out) count: a replica that dies
//!   takes its requests, and so its reservations, with it.
//!
//! The schema is in `sdk/migrations/postgres/*.sql`; [`PostgresStore::connect`]
//! applies what the database lacks, once, even when replicas start together.
//!
//! A store URL is a libpq-style URL (`postgres://user:password@host:port/db`,
//! with libpq's parameters such as `options=-c search_path=amp` or
//! `application_name`) to which the store adds its own, all starting with
//! `amp_`: `amp_pool_size` (connections per replica, default 16) and
//! `amp_lease` (seconds, default 60: the settlement lease and the replica
//! heartbeat's lifetime). TLS is not supported: connect over loopback, a
//! private network or a Unix socket (`host=/run/postgresql`).

mod rows;
mod schema;
mod store;
mod url;

pub use schema::{Migration, MIGRATIONS};
pub use store::PostgresStore;
pub use url::{parse_url, PostgresOptions};
