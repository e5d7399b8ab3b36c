//! The store itself: a pool of connections, a replica identity with its
//! heartbeat, and the lane updates run as database transactions.

use super::rows::*;
use super::schema::{migrate, sql};
use super::url::{parse_url, PostgresOptions};
use crate::durability::Durability;
use crate::store::backend::{StoreError, VoucherStore};
use crate::store::state::{LaneId, LaneQuery, LaneState, Update};
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;
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

impl PostgresStore {
    /// Connects to the database at `url` (see the [module](crate::store::postgres) for the
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
