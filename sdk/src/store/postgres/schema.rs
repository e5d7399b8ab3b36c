//! The schema: its migrations, applied once each under an advisory lock, and
//! the statements every connection caches.

use super::rows::pg;
use crate::store::backend::StoreError;
use deadpool_postgres::Object;
/// A schema migration: its number, name and SQL.
#[derive(Clone, Copy, Debug)]
pub struct Migration {
    /// Its number; migrations apply in increasing order, each once.
    pub version: i32,
    /// Its file name without `.sql` (`0001_lanes`).
    pub name: &'static str,
    /// The SQL it runs, as one batch.
    pub sql: &'static str,
}

/// The schema, in order; the last one's version is the schema version.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "0001_lanes",
    sql: include_str!("../../../migrations/postgres/0001_lanes.sql"),
}];

/// Advisory lock key under which migrations run ("AMP1").
const MIGRATION_LOCK: i64 = 0x414D_5031;

/// Applies the migrations the database lacks, under an advisory lock.
pub(super) async fn migrate(client: &mut Object) -> Result<(), StoreError> {
    let tx = client.transaction().await.map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS amp_schema_migrations (
             version integer PRIMARY KEY,
             name text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(pg)?;
    let applied: Vec<i32> = tx
        .query(
            "SELECT version FROM amp_schema_migrations ORDER BY version",
            &[],
        )
        .await
        .map_err(pg)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let known = MIGRATIONS.last().map_or(0, |m| m.version);
    if let Some(newer) = applied.iter().find(|v| **v > known) {
        return Err(StoreError::Corrupt(format!(
            "schema version {newer}, this build reads up to {known}"
        )));
    }
    for migration in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        tx.batch_execute(migration.sql).await.map_err(pg)?;
        tx.execute(
            "INSERT INTO amp_schema_migrations (version, name) VALUES ($1, $2)",
            &[&migration.version, &migration.name],
        )
        .await
        .map_err(pg)?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "migration applied"
        );
    }
    tx.commit().await.map_err(pg)
}

/// Statements, shared by every connection's statement cache.
pub(super) mod sql {
    pub const COLUMNS: &str = "l.lane, l.generation, l.channel, l.delegate, l.signer, l.last_seq,
                               l.owed, l.settled, l.voucher, l.signature, l.closed";

    pub const INSERT_FRESH: &str = "INSERT INTO amp_lanes (lane, generation, channel, delegate,
             signer, last_seq, owed, settled, unsettled, voucher, signature, closed)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (lane, generation) DO NOTHING";

    pub const WRITE: &str = "UPDATE amp_lanes SET channel = $3, delegate = $4, signer = $5,
             last_seq = $6, owed = $7, settled = $8, unsettled = $9, voucher = $10,
             signature = $11, closed = $12
         WHERE lane = $1 AND generation = $2";

    /// Reserved in total by live replicas (and this one), and by this one.
    pub const RESERVED: &str = "SELECT
             COALESCE(SUM(r.reserved) FILTER (WHERE r.replica = $3 OR p.expires_at > now()), 0)::bigint,
             COALESCE(SUM(r.reserved) FILTER (WHERE r.replica = $3), 0)::bigint
         FROM amp_reservations r LEFT JOIN amp_replicas p ON p.id = r.replica
         WHERE r.lane = $1 AND r.generation = $2";

    pub const RESERVE: &str = "INSERT INTO amp_reservations (lane, generation, replica, reserved)
         VALUES ($1, $2, $3, $4)
         ON CONFLICT (lane, generation, replica) DO UPDATE SET reserved = excluded.reserved";

    pub const UNRESERVE: &str =
        "DELETE FROM amp_reservations WHERE lane = $1 AND generation = $2 AND replica = $3";

    /// Claims rows in key order, so that claimers never deadlock each other.
    pub const CLAIM: &str = "WITH wanted AS (
             SELECT l.lane, l.generation FROM amp_lanes l
             JOIN unnest($1::bytea[], $2::bigint[]) AS w (lane, generation)
               ON l.lane = w.lane AND l.generation = w.generation
             WHERE l.settler IS NULL OR l.settler = $3 OR l.settler_until <= now()
             ORDER BY l.lane, l.generation
             FOR UPDATE OF l
         )
         UPDATE amp_lanes l SET settler = $3, settler_until = now() + make_interval(secs => $4)
         FROM wanted w WHERE l.lane = w.lane AND l.generation = w.generation
         RETURNING l.lane, l.generation";

    pub const RELEASE: &str = "WITH mine AS (
             SELECT l.lane, l.generation FROM amp_lanes l
             JOIN unnest($1::bytea[], $2::bigint[]) AS w (lane, generation)
               ON l.lane = w.lane AND l.generation = w.generation
             WHERE l.settler = $3
             ORDER BY l.lane, l.generation
             FOR UPDATE OF l
         )
         UPDATE amp_lanes l SET settler = NULL, settler_until = NULL
         FROM mine m WHERE l.lane = m.lane AND l.generation = m.generation AND l.settler = $3";

    pub const RELEASE_ALL: &str = "WITH mine AS (
             SELECT lane, generation FROM amp_lanes WHERE settler = $1
             ORDER BY lane, generation FOR UPDATE
         )
         UPDATE amp_lanes l SET settler = NULL, settler_until = NULL
         FROM mine m WHERE l.lane = m.lane AND l.generation = m.generation AND l.settler = $1";

    pub const BEAT: &str = "INSERT INTO amp_replicas (id, expires_at)
         VALUES ($1, now() + make_interval(secs => $2))
         ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at";

    /// Replicas dead for ten leases, and reservations nobody alive holds.
    pub const FORGET: &str = "WITH dead AS (
             DELETE FROM amp_replicas
             WHERE expires_at < now() - make_interval(secs => $1 * 10) RETURNING id
         )
         DELETE FROM amp_reservations r
         WHERE r.replica IN (SELECT id FROM dead)
            OR NOT EXISTS (SELECT 1 FROM amp_replicas p WHERE p.id = r.replica)";
}
