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
//!   lanes it wants ([`VoucherStore::claim`]): a conditional `UPDATE` sets the
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

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::{Durability, LaneId, LaneQuery, LaneState, StoreError, Update, VoucherStore};
use crate::voucher::{self, SignedVoucher, SIGNATURE_LEN};

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
    sql: include_str!("../../migrations/postgres/0001_lanes.sql"),
}];

/// Advisory lock key under which migrations run ("AMP1").
const MIGRATION_LOCK: i64 = 0x414D_5031;

/// How a [`PostgresStore`] connects and leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostgresOptions {
    /// Connections this replica keeps (URL parameter `amp_pool_size`).
    pub pool_size: usize,
    /// How long a settlement claim and a replica's heartbeat last (URL
    /// parameter `amp_lease`, seconds). A dead replica's lanes are taken over,
    /// and its reservations forgotten, this long after it died.
    pub lease: Duration,
    /// [`Durability::Full`]: every commit is on the database's disk before
    /// the request is answered (`synchronous_commit = on`, the server's
    /// default). [`Durability::Normal`]: `synchronous_commit = off`, which
    /// survives any replica dying but may lose the last moments of commits
    /// if the database server itself crashes.
    pub durability: Durability,
    /// Shown in `amp_replicas.label` (default: the process id).
    pub label: Option<String>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            pool_size: 16,
            lease: Duration::from_secs(60),
            durability: Durability::Full,
            label: None,
        }
    }
}

/// A [`VoucherStore`] in a PostgreSQL database that several processes share.
pub struct PostgresStore {
    inner: Arc<Inner>,
    heartbeat: Mutex<Option<JoinHandle<()>>>,
}

struct Inner {
    pool: Pool,
    /// This replica's row in `amp_replicas`.
    replica: i64,
    lease: Duration,
    closed: AtomicBool,
    /// Lanes known to have a row (rows are never deleted): their updates
    /// skip the insert.
    known: Mutex<HashSet<LaneId>>,
}

/// Most lanes remembered in `Inner::known`; past it the set starts over.
const MAX_KNOWN: usize = 200_000;

fn pg(error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Postgres(Box::new(error))
}

impl PostgresStore {
    /// Connects to the database at `url` (see the [module](self) for the
    /// parameters it takes), applies missing migrations and registers this
    /// replica. `durability` is used unless the options in the URL say otherwise.
    pub async fn connect(url: &str, durability: Durability) -> Result<Self, StoreError> {
        let (config, mut options) = parse_url(url)?;
        options.durability = durability;
        Self::connect_with(config, options).await
    }

    /// Connects with a parsed driver configuration and explicit options.
    pub async fn connect_with(
        mut config: tokio_postgres::Config,
        options: PostgresOptions,
    ) -> Result<Self, StoreError> {
        if options.pool_size == 0 || options.lease.is_zero() {
            return Err(StoreError::Postgres(
                "amp_pool_size and amp_lease must be positive".into(),
            ));
        }
        if config.get_application_name().is_none() {
            config.application_name("amp");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        // A replica stopped in the middle of a transaction (paused, cut off)
        // must not hold a lane's row lock for ever: the server ends such a
        // session, and a request waits a bounded time for a lock (then it is
        // refused as unavailable, and the client retries).
        let mut session =
            String::from("-c idle_in_transaction_session_timeout=30000 -c lock_timeout=15000");
        if options.durability == Durability::Normal {
            session.push_str(" -c synchronous_commit=off");
        }
        // The URL's own options come last, so they win.
        if let Some(existing) = config.get_options().filter(|o| !o.is_empty()) {
            session = format!("{session} {existing}");
        }
        config.options(session);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(pg)?;

        let mut client = pool.get().await.map_err(pg)?;
        migrate(&mut client).await?;
        let label = options
            .label
            .clone()
            .unwrap_or_else(|| format!("pid {}", std::process::id()));
        let row = client
            .query_one(
                "INSERT INTO amp_replicas (label, expires_at)
                 VALUES ($1, now() + make_interval(secs => $2)) RETURNING id",
                &[&label, &options.lease.as_secs_f64()],
            )
            .await
            .map_err(pg)?;
        drop(client);
        let inner = Arc::new(Inner {
            pool,
            replica: row.get(0),
            lease: options.lease,
            closed: AtomicBool::new(false),
            known: Mutex::new(HashSet::new()),
        });
        let heartbeat = tokio::spawn(heartbeat(Arc::downgrade(&inner)));
        tracing::info!(replica = inner.replica, label, lease = ?options.lease,
                       pool_size = options.pool_size, "PostgreSQL voucher store connected");
        Ok(Self {
            inner,
            heartbeat: Mutex::new(Some(heartbeat)),
        })
    }

    /// This replica's id in `amp_replicas` (and in `amp_lanes.settler`).
    pub fn replica_id(&self) -> i64 {
        self.inner.replica
    }

    fn live(&self) -> Result<Arc<Inner>, StoreError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(StoreError::Closed);
        }
        Ok(Arc::clone(&self.inner))
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Like a crash: leases and reservations run out by themselves.
        if let Some(task) = self
            .heartbeat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
        self.inner.pool.close();
    }
}

/// Splits the store's own `amp_*` parameters off a URL and parses the rest.
pub fn parse_url(url: &str) -> Result<(tokio_postgres::Config, PostgresOptions), StoreError> {
    let bad = |what: String| StoreError::Postgres(what.into());
    let mut options = PostgresOptions::default();
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, query),
        None => (url, ""),
    };
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "amp_pool_size" => {
                options.pool_size = value
                    .parse()
                    .map_err(|_| bad(format!("amp_pool_size={value} is not a count")))?;
            }
            "amp_lease" => {
                let seconds: f64 = value
                    .parse()
                    .map_err(|_| bad(format!("amp_lease={value} is not seconds")))?;
                options.lease = Duration::try_from_secs_f64(seconds)
                    .map_err(|_| bad(format!("amp_lease={value} is not seconds")))?;
            }
            other if other.starts_with("amp_") => {
                return Err(bad(format!("unknown store parameter {other}")));
            }
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    // The driver's message never repeats the URL, so no password leaks into logs.
    let config = tokio_postgres::Config::from_str(&rest).map_err(pg)?;
    Ok((config, options))
}

/// Applies the migrations the database lacks, under an advisory lock.
async fn migrate(client: &mut Object) -> Result<(), StoreError> {
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

/// Keeps this replica alive in `amp_replicas`, and forgets replicas long dead.
async fn heartbeat(inner: std::sync::Weak<Inner>) {
    loop {
        let Some(every) = inner.upgrade().map(|i| i.lease / 4) else {
            return;
        };
        tokio::time::sleep(every).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if inner.closed.load(Ordering::Acquire) {
            return;
        }
        if let Err(error) = inner.beat().await {
            tracing::warn!(%error, replica = inner.replica, "voucher store heartbeat failed");
        }
    }
}

/// Statements, shared by every connection's statement cache.
mod sql {
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

/// A lane's key columns.
fn key(id: &LaneId) -> (Vec<u8>, i64) {
    (id.lane.to_bytes().to_vec(), int(id.generation))
}

/// Integers are signed: u64 values are stored by their bits.
fn int(value: u64) -> i64 {
    value as i64
}

fn uint(value: i64) -> u64 {
    value as u64
}

/// The non-key columns of a state, as parameters `$3..$12`.
struct Columns {
    channel: Vec<u8>,
    delegate: Option<Vec<u8>>,
    signer: Vec<u8>,
    last_seq: i64,
    owed: i64,
    settled: i64,
    unsettled: i64,
    voucher: Option<Vec<u8>>,
    signature: Option<Vec<u8>>,
    closed: bool,
}

impl Columns {
    fn of(state: &LaneState) -> Self {
        Self {
            channel: state.channel.to_bytes().to_vec(),
            delegate: state.delegate.map(|d| d.to_bytes().to_vec()),
            signer: state.signer.to_bytes().to_vec(),
            last_seq: int(state.last_seq),
            owed: int(state.owed),
            settled: int(state.settled),
            unsettled: int(state.unsettled()),
            voucher: state.best.map(|b| b.voucher.to_bytes().to_vec()),
            signature: state.best.map(|b| b.signature.to_vec()),
            closed: state.closed,
        }
    }

    fn params<'a>(
        &'a self,
        lane: &'a Vec<u8>,
        generation: &'a i64,
    ) -> [&'a (dyn ToSql + Sync); 12] {
        [
            lane,
            generation,
            &self.channel,
            &self.delegate,
            &self.signer,
            &self.last_seq,
            &self.owed,
            &self.settled,
            &self.unsettled,
            &self.voucher,
            &self.signature,
            &self.closed,
        ]
    }
}

fn decode(row: &Row) -> Result<LaneState, StoreError> {
    let get_key = |index: usize, what: &str| -> Result<Pubkey, StoreError> {
        let bytes: &[u8] = row.try_get(index).map_err(pg)?;
        <[u8; 32]>::try_from(bytes)
            .map(Pubkey::new_from_array)
            .map_err(|_| StoreError::Corrupt(format!("{what} is {} bytes", bytes.len())))
    };
    let voucher: Option<&[u8]> = row.try_get(8).map_err(pg)?;
    let signature: Option<&[u8]> = row.try_get(9).map_err(pg)?;
    let best = match (voucher, signature) {
        (Some(voucher), Some(signature)) => Some(SignedVoucher {
            voucher: voucher::decode(voucher)
                .map_err(|e| StoreError::Corrupt(format!("voucher: {e}")))?,
            signature: <[u8; SIGNATURE_LEN]>::try_from(signature)
                .map_err(|_| StoreError::Corrupt("signature length".into()))?,
        }),
        (None, None) => None,
        _ => return Err(StoreError::Corrupt("a voucher without signature".into())),
    };
    let delegate: Option<&[u8]> = row.try_get(3).map_err(pg)?;
    let number = |index: usize| -> Result<u64, StoreError> {
        row.try_get::<_, i64>(index).map(uint).map_err(pg)
    };
    Ok(LaneState {
        id: LaneId {
            lane: get_key(0, "lane")?,
            generation: number(1)?,
        },
        channel: get_key(2, "channel")?,
        delegate: match delegate {
            Some(_) => Some(get_key(3, "delegate")?),
            None => None,
        },
        signer: get_key(4, "signer")?,
        last_seq: number(5)?,
        owed: number(6)?,
        settled: number(7)?,
        best,
        closed: row.try_get(10).map_err(pg)?,
        reserved: 0,
    })
}

fn decode_ids(rows: &[Row]) -> Result<Vec<LaneId>, StoreError> {
    let mut ids = rows
        .iter()
        .map(|row| {
            let lane: &[u8] = row.try_get(0).map_err(pg)?;
            let lane = <[u8; 32]>::try_from(lane)
                .map_err(|_| StoreError::Corrupt("lane length".into()))?;
            Ok(LaneId {
                lane: Pubkey::new_from_array(lane),
                generation: uint(row.try_get(1).map_err(pg)?),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    ids.sort();
    Ok(ids)
}

/// Reserved amounts are non-negative and far below 2^63; clamp to be sure.
fn reserved_column(value: i128) -> i64 {
    value.clamp(0, i128::from(i64::MAX)) as i64
}

impl Inner {
    async fn client(&self) -> Result<Object, StoreError> {
        self.pool.get().await.map_err(pg)
    }

    /// One update as one transaction, in two round trips: `BEGIN`, create
    /// the row if missing, lock it, read the reservations — then write and
    /// `COMMIT`. The statements of a round trip are pipelined.
    async fn update(&self, fresh: LaneState, update: Update) -> Result<(), StoreError> {
        let client = self.client().await?;
        let result = self.transact(&client, fresh, update).await;
        if result.is_err() {
            // Leave no transaction open on a pooled connection; a connection
            // that cannot even roll back leaves the pool.
            if client.batch_execute("ROLLBACK").await.is_err() {
                drop(Object::take(client));
            }
        }
        result
    }

    async fn transact(
        &self,
        client: &Object,
        fresh: LaneState,
        update: Update,
    ) -> Result<(), StoreError> {
        let id = fresh.id;
        let (lane, generation) = key(&id);
        let select = format!(
            "SELECT {} FROM amp_lanes l WHERE l.lane = $1 AND l.generation = $2 FOR UPDATE",
            sql::COLUMNS
        );
        let (insert, select, reserved) = tokio::try_join!(
            client.prepare_cached(sql::INSERT_FRESH),
            client.prepare_cached(&select),
            client.prepare_cached(sql::RESERVED),
        )
        .map_err(pg)?;
        let fresh_columns = Columns::of(&fresh);
        let insert_params = fresh_columns.params(&lane, &generation);
        let key_params: [&(dyn ToSql + Sync); 2] = [&lane, &generation];
        let reserved_params: [&(dyn ToSql + Sync); 3] = [&lane, &generation, &self.replica];
        // A lane this replica has seen stored exists for good: no insert.
        let known = self.is_known(&id);
        let (begun, inserted, row, reservations) = tokio::join!(
            client.batch_execute("BEGIN"),
            async {
                match known {
                    true => Ok(1),
                    false => client.execute(&insert, &insert_params).await,
                }
            },
            client.query_opt(&select, &key_params),
            client.query_one(&reserved, &reserved_params),
        );
        begun.map_err(pg)?;
        let existed = inserted.map_err(pg)? == 0;
        let row = match row.map_err(pg)? {
            Some(row) => row,
            None if known => {
                // Known here but gone there (someone emptied the table).
                self.known
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&id);
                client.execute(&insert, &insert_params).await.map_err(pg)?;
                client.query_one(&select, &key_params).await.map_err(pg)?
            }
            None => return Err(StoreError::Corrupt("the lane's row vanished".into())),
        };
        if existed {
            self.remember(id);
        }
        let reservations = reservations.map_err(pg)?;
        let mut state = decode(&row)?;
        let total: i64 = reservations.get(0);
        let mine: i64 = reservations.get(1);
        state.reserved = uint(total.max(0));
        let before = state.reserved;

        // The update is the caller's code; a panic in it must not take the
        // store down with it (its requester then sees the update as not run).
        let persist = std::panic::catch_unwind(AssertUnwindSafe(|| update(&mut state)))
            .unwrap_or_else(|_| {
                tracing::error!(lane = %id.lane, "a store update panicked; discarded");
                false
            });
        if !persist {
            return client.batch_execute("ROLLBACK").await.map_err(pg);
        }
        state.id = id;
        let columns = Columns::of(&state);
        // The change in reservations is this replica's own: its requests
        // reserve on admission and release when they finish, here.
        let delta = i128::from(state.reserved) - i128::from(before);
        let mine = reserved_column(i128::from(mine) + delta);
        let (write, reserve) = tokio::try_join!(
            client.prepare_cached(sql::WRITE),
            client.prepare_cached(if mine > 0 {
                sql::RESERVE
            } else {
                sql::UNRESERVE
            }),
        )
        .map_err(pg)?;
        let mine_param = mine;
        let reserve_params: Vec<&(dyn ToSql + Sync)> = if mine > 0 {
            vec![&lane, &generation, &self.replica, &mine_param]
        } else {
            vec![&lane, &generation, &self.replica]
        };
        let reserve = async {
            if delta == 0 {
                Ok(0)
            } else {
                client.execute(&reserve, &reserve_params).await
            }
        };
        let write_params = columns.params(&lane, &generation);
        let (written, reserved, committed) = tokio::join!(
            client.execute(&write, &write_params),
            reserve,
            client.batch_execute("COMMIT"),
        );
        let written = written.map_err(pg)?;
        reserved.map_err(pg)?;
        committed.map_err(pg)?;
        if written != 1 {
            return Err(StoreError::Corrupt(format!(
                "{written} rows written for one lane"
            )));
        }
        self.remember(id);
        Ok(())
    }

    fn is_known(&self, id: &LaneId) -> bool {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(id)
    }

    fn remember(&self, id: LaneId) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= MAX_KNOWN {
            known.clear();
        }
        known.insert(id);
    }

    async fn lane(&self, id: LaneId) -> Result<Option<LaneState>, StoreError> {
        let client = self.client().await?;
        let (lane, generation) = key(&id);
        let statement = client
            .prepare_cached(&format!(
                "SELECT {}, ({}) FROM amp_lanes l WHERE l.lane = $1 AND l.generation = $2",
                sql::COLUMNS,
                // The live reservations of this lane, as in `sql::RESERVED`.
                "SELECT COALESCE(SUM(r.reserved), 0)::bigint FROM amp_reservations r
                 LEFT JOIN amp_replicas p ON p.id = r.replica
                 WHERE r.lane = l.lane AND r.generation = l.generation
                   AND (r.replica = $3 OR p.expires_at > now())"
            ))
            .await
            .map_err(pg)?;
        let row = client
            .query_opt(&statement, &[&lane, &generation, &self.replica])
            .await
            .map_err(pg)?;
        row.map(|row| {
            let mut state = decode(&row)?;
            state.reserved = uint(row.try_get::<_, i64>(11).map_err(pg)?.max(0));
            Ok(state)
        })
        .transpose()
    }

    async fn find(&self, query: LaneQuery) -> Result<Vec<LaneState>, StoreError> {
        let client = self.client().await?;
        let rows = match query {
            LaneQuery::Unsettled => {
                let statement = client
                    .prepare_cached(&format!(
                        "SELECT {} FROM amp_lanes l WHERE l.unsettled <> 0 AND NOT l.closed
                         ORDER BY l.lane, l.generation",
                        sql::COLUMNS
                    ))
                    .await
                    .map_err(pg)?;
                client.query(&statement, &[]).await.map_err(pg)?
            }
            LaneQuery::Channel(channel) => {
                let statement = client
                    .prepare_cached(&format!(
                        "SELECT {} FROM amp_lanes l WHERE l.channel = $1
                         ORDER BY l.lane, l.generation",
                        sql::COLUMNS
                    ))
                    .await
                    .map_err(pg)?;
                let channel = channel.to_bytes().to_vec();
                client.query(&statement, &[&channel]).await.map_err(pg)?
            }
        };
        rows.iter().map(decode).collect()
    }

    fn key_arrays(lanes: &[LaneId]) -> (Vec<Vec<u8>>, Vec<i64>) {
        lanes.iter().map(key).unzip()
    }

    async fn claim(&self, lanes: &[LaneId]) -> Result<Vec<LaneId>, StoreError> {
        if lanes.is_empty() {
            return Ok(Vec::new());
        }
        let (keys, generations) = Self::key_arrays(lanes);
        let client = self.client().await?;
        let statement = client.prepare_cached(sql::CLAIM).await.map_err(pg)?;
        let rows = client
            .query(
                &statement,
                &[
                    &keys,
                    &generations,
                    &self.replica,
                    &self.lease.as_secs_f64(),
                ],
            )
            .await
            .map_err(pg)?;
        decode_ids(&rows)
    }

    async fn release(&self, lanes: &[LaneId]) -> Result<(), StoreError> {
        if lanes.is_empty() {
            return Ok(());
        }
        let (keys, generations) = Self::key_arrays(lanes);
        let client = self.client().await?;
        let statement = client.prepare_cached(sql::RELEASE).await.map_err(pg)?;
        client
            .execute(&statement, &[&keys, &generations, &self.replica])
            .await
            .map_err(pg)?;
        Ok(())
    }

    async fn beat(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        let lease = self.lease.as_secs_f64();
        client
            .execute(sql::BEAT, &[&self.replica, &lease])
            .await
            .map_err(pg)?;
        client.execute(sql::FORGET, &[&lease]).await.map_err(pg)?;
        Ok(())
    }

    /// A clean exit: this replica's leases, reservations and row go.
    async fn leave(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(sql::RELEASE_ALL, &[&self.replica])
            .await
            .map_err(pg)?;
        client
            .batch_execute(&format!(
                "DELETE FROM amp_reservations WHERE replica = {id};
                 DELETE FROM amp_replicas WHERE id = {id};",
                id = self.replica
            ))
            .await
            .map_err(pg)?;
        Ok(())
    }
}

/// Runs `f` on a task of its own: a caller that goes away (a client hanging
/// up drops its request's future) must never abandon a transaction half-way.
async fn detached<T: Send + 'static>(
    f: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::spawn(f)
        .await
        .map_err(|e| StoreError::Corrupt(format!("store task: {e}")))?
}

#[async_trait]
impl VoucherStore for PostgresStore {
    async fn update(&self, fresh: LaneState, update: Update) -> Result<(), StoreError> {
        let inner = self.live()?;
        detached(async move { inner.update(fresh, update).await }).await
    }

    async fn lane(&self, id: LaneId) -> Result<Option<LaneState>, StoreError> {
        self.live()?.lane(id).await
    }

    async fn find(&self, query: LaneQuery) -> Result<Vec<LaneState>, StoreError> {
        self.live()?.find(query).await
    }

    async fn claim(&self, lanes: &[LaneId]) -> Result<Vec<LaneId>, StoreError> {
        let inner = self.live()?;
        let lanes = lanes.to_vec();
        detached(async move { inner.claim(&lanes).await }).await
    }

    async fn release(&self, lanes: &[LaneId]) -> Result<(), StoreError> {
        let inner = self.live()?;
        let lanes = lanes.to_vec();
        detached(async move { inner.release(&lanes).await }).await
    }

    /// Releases this replica's settlement leases and reservations, leaves
    /// `amp_replicas`, and closes the connections. Updates already running
    /// finish first.
    async fn close(&self) -> Result<(), StoreError> {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        if let Some(task) = self
            .heartbeat
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
        // Wait (bounded) for updates in flight to give their connections back.
        for _ in 0..200 {
            let status = self.inner.pool.status();
            if status.available >= status.size {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let result = self.inner.leave().await;
        self.inner.pool.close();
        tracing::info!(
            replica = self.inner.replica,
            "PostgreSQL voucher store closed"
        );
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_the_store_parameters() {
        let (config, options) = parse_url(
            "postgres://u:p@127.0.0.1:5433/db?amp_pool_size=3&application_name=x&amp_lease=1.5",
        )
        .unwrap();
        assert_eq!(options.pool_size, 3);
        assert_eq!(options.lease, Duration::from_millis(1_500));
        assert_eq!(config.get_application_name(), Some("x"));
        assert_eq!(config.get_dbname(), Some("db"));
        let (_, options) = parse_url("postgresql://localhost/db").unwrap();
        assert_eq!(options, PostgresOptions::default());
        for wrong in [
            "postgres://h/db?amp_pool_size=many",
            "postgres://h/db?amp_lease=-1",
            "postgres://h/db?amp_typo=1",
            "postgres://h/db?nonsense=1",
        ] {
            assert!(parse_url(wrong).is_err(), "{wrong}");
        }
        assert!(
            super::super::is_url("postgres://h/db") && super::super::is_url("postgresql://h/db")
        );
        assert!(!super::super::is_url("/var/lib/amp/postgres.sqlite"));
    }
}
