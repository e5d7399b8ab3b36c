//! The embedded default store: one SQLite file in WAL mode, owned by one
//! dedicated thread.
//!
//! The thread keeps every lane it has touched in memory, so an update costs
//! no read, and it commits in groups: it takes every update waiting in its
//! queue, applies them in one transaction, commits once (one `fsync` in
//! [`Durability::Full`]), then answers them all. Under concurrency the cost
//! of the `fsync` is shared by every request waiting on it, while each
//! request still gets its answer only once its voucher is on disk.
//!
//! The file is opened in exclusive locking mode: the in-memory copy assumes
//! this thread is the file's only writer, so a second server on the same
//! file waits (then fails) instead of corrupting it.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use anchor_lang::prelude::Pubkey;
use async_trait::async_trait;
use rusqlite::{params, Connection, OptionalExtension, Row};
use tokio::sync::oneshot;

use super::backend::{StoreError, VoucherStore};
use super::state::{LaneId, LaneQuery, LaneState, Update};
use crate::durability::Durability;
use crate::voucher::{self, SignedVoucher, SIGNATURE_LEN};

/// Most updates committed in one transaction.
const MAX_BATCH: usize = 512;
/// How long opening waits for another process to release the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Schema version, in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

/// A [`VoucherStore`] in one SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    commands: RwLock<Option<Sender<Command>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

enum Command {
    Update {
        fresh: Box<LaneState>,
        update: Update,
        reply: oneshot::Sender<Result<(), StoreError>>,
    },
    Lane {
        id: LaneId,
        reply: oneshot::Sender<Result<Option<LaneState>, StoreError>>,
    },
    Find {
        query: LaneQuery,
        reply: oneshot::Sender<Result<Vec<LaneState>, StoreError>>,
    },
}

impl SqliteStore {
    /// Opens (or creates) the store at `path` and starts its thread. Blocks
    /// while the file is opened and checked: call it at startup.
    pub fn open(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        let path = path.as_ref().to_owned();
        let conn = open_connection(&path, durability)?;
        let (sender, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("amp-sqlite".into())
            .spawn(move || run(conn, receiver))?;
        tracing::info!(path = %path.display(), ?durability, "voucher store opened");
        Ok(Self {
            path,
            commands: RwLock::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The database file this store was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn send(&self, command: Command) -> Result<(), StoreError> {
        let commands = self.commands.read().unwrap_or_else(|e| e.into_inner());
        let sender = commands.as_ref().ok_or(StoreError::Closed)?;
        sender.send(command).map_err(|_| StoreError::Closed)
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Command,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(command(reply))?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // The thread ends once the queue is closed and drained; it commits
        // every update it took, so nothing acknowledged is lost by not waiting.
        self.commands
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
    }
}

#[async_trait]
impl VoucherStore for SqliteStore {
    async fn update(&self, fresh: LaneState, update: Update) -> Result<(), StoreError> {
        self.ask(|reply| Command::Update {
            fresh: Box::new(fresh),
            update,
            reply,
        })
        .await
    }

    async fn lane(&self, id: LaneId) -> Result<Option<LaneState>, StoreError> {
        self.ask(|reply| Command::Lane { id, reply }).await
    }

    async fn find(&self, query: LaneQuery) -> Result<Vec<LaneState>, StoreError> {
        self.ask(|reply| Command::Find { query, reply }).await
    }

    /// Closes the queue and waits (off the runtime) for the thread to
    /// finish its last commit and release the file.
    async fn close(&self) -> Result<(), StoreError> {
        self.commands
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|e| StoreError::Corrupt(format!("store thread: {e}")))?
                .map_err(|_| StoreError::Corrupt("the store thread panicked".into()))?;
        }
        Ok(())
    }
}

fn open_connection(path: &Path, durability: Durability) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let synchronous = match durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA locking_mode = EXCLUSIVE;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = {synchronous};"
    ))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    match version {
        0 => conn.execute_batch(&format!(
            "BEGIN IMMEDIATE;
             CREATE TABLE lanes (
                 lane BLOB NOT NULL,
                 generation INTEGER NOT NULL,
                 channel BLOB NOT NULL,
                 delegate BLOB,
                 signer BLOB NOT NULL,
                 last_seq INTEGER NOT NULL,
                 owed INTEGER NOT NULL,
                 settled INTEGER NOT NULL,
                 unsettled INTEGER NOT NULL,
                 voucher BLOB,
                 signature BLOB,
                 closed INTEGER NOT NULL,
                 PRIMARY KEY (lane, generation)
             ) WITHOUT ROWID;
             CREATE INDEX lanes_unsettled ON lanes (lane) WHERE unsettled != 0 AND closed = 0;
             CREATE INDEX lanes_channel ON lanes (channel);
             PRAGMA user_version = {SCHEMA_VERSION};
             COMMIT;"
        ))?,
        SCHEMA_VERSION => {}
        other => {
            return Err(StoreError::Corrupt(format!(
                "schema version {other}, this build reads {SCHEMA_VERSION}"
            )))
        }
    }
    Ok(conn)
}

/// The thread: takes commands in groups until the queue closes.
fn run(conn: Connection, commands: Receiver<Command>) {
    let mut cache: HashMap<LaneId, LaneState> = HashMap::new();
    while let Ok(first) = commands.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        process(&conn, &mut cache, batch);
    }
    tracing::debug!("voucher store thread finished");
}

fn process(conn: &Connection, cache: &mut HashMap<LaneId, LaneState>, batch: Vec<Command>) {
    let mut replies = Vec::new();
    let mut reads = Vec::new();
    let mut updates = Vec::new();
    for command in batch {
        match command {
            Command::Update {
                fresh,
                update,
                reply,
            } => updates.push((fresh, update, reply)),
            read => reads.push(read),
        }
    }
    if !updates.is_empty() {
        let mut touched = Vec::new();
        let result = apply(conn, cache, updates, &mut replies, &mut touched);
        if let Err(error) = result {
            tracing::error!(%error, "voucher store: commit failed, the batch is refused");
            let _ = conn.execute_batch("ROLLBACK");
            // The copies may hold edits that never reached the disk.
            for id in touched {
                cache.remove(&id);
            }
            let message = error.to_string();
            for reply in replies.drain(..) {
                let _ = reply.send(Err(StoreError::Corrupt(message.clone())));
            }
        }
        for reply in replies {
            // The requester may have gone away; the write stands regardless.
            let _ = reply.send(Ok(()));
        }
    }
    for read in reads {
        match read {
            Command::Lane { id, reply } => {
                let state = match cache.get(&id) {
                    Some(state) => Ok(Some(state.clone())),
                    None => load(conn, id),
                };
                let _ = reply.send(state);
            }
            Command::Find { query, reply } => {
                let _ = reply.send(find(conn, query));
            }
            Command::Update { .. } => unreachable!("updates were taken out above"),
        }
    }
}

/// An update taken off the queue: the fresh state, the change, the requester.
type Pending = (
    Box<LaneState>,
    Update,
    oneshot::Sender<Result<(), StoreError>>,
);

/// Applies the updates in one transaction; on success `replies` holds the
/// requesters to answer.
fn apply(
    conn: &Connection,
    cache: &mut HashMap<LaneId, LaneState>,
    updates: Vec<Pending>,
    replies: &mut Vec<oneshot::Sender<Result<(), StoreError>>>,
    touched: &mut Vec<LaneId>,
) -> Result<(), StoreError> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    for (fresh, update, reply) in updates {
        replies.push(reply);
        let id = fresh.id;
        let stored = match cache.get(&id) {
            Some(state) => Some(state.clone()),
            None => load(conn, id)?,
        };
        let current = stored.clone().unwrap_or(*fresh);
        let mut next = current.clone();
        // An update is the caller's code; a panic in it must not take the
        // store down with it (its requester then sees the update as not run).
        let persist = std::panic::catch_unwind(AssertUnwindSafe(|| update(&mut next)))
            .unwrap_or_else(|_| {
                tracing::error!(lane = %id.lane, "a store update panicked; discarded");
                false
            });
        if persist {
            next.id = id;
            write(conn, &next)?;
            touched.push(id);
            cache.insert(id, next);
        } else if let Some(stored) = stored {
            // A declined update keeps nothing: a lane never stored stays unknown.
            cache.entry(id).or_insert(stored);
        }
    }
    conn.prepare_cached("COMMIT")?.execute([])?;
    Ok(())
}

/// SQLite integers are signed: u64 values are stored by their bits.
fn int(value: u64) -> i64 {
    value as i64
}

fn uint(value: i64) -> u64 {
    value as u64
}

/// Upserts a lane's state. The lane's accounts (channel, delegate, signer)
/// never change for one generation, so an update leaves them, and the
/// index on the channel, alone.
fn write(conn: &Connection, state: &LaneState) -> Result<(), StoreError> {
    let mut statement = conn.prepare_cached(
        "INSERT INTO lanes (lane, generation, channel, delegate, signer, last_seq, owed,
                            settled, unsettled, voucher, signature, closed)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         ON CONFLICT (lane, generation) DO UPDATE SET
             last_seq = excluded.last_seq,
             owed = excluded.owed, settled = excluded.settled,
             unsettled = excluded.unsettled, voucher = excluded.voucher,
             signature = excluded.signature, closed = excluded.closed",
    )?;
    statement.execute(params![
        state.id.lane.as_array().as_slice(),
        int(state.id.generation),
        state.channel.as_array().as_slice(),
        state.delegate.as_ref().map(|d| d.as_array().to_vec()),
        state.signer.as_array().as_slice(),
        int(state.last_seq),
        int(state.owed),
        int(state.settled),
        int(state.unsettled()),
        state.best.map(|b| b.voucher.to_bytes().to_vec()),
        state.best.map(|b| b.signature.to_vec()),
        state.closed,
    ])?;
    Ok(())
}

const COLUMNS: &str = "lane, generation, channel, delegate, signer, last_seq, owed, settled,
                       voucher, signature, closed";

fn load(conn: &Connection, id: LaneId) -> Result<Option<LaneState>, StoreError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM lanes WHERE lane = ?1 AND generation = ?2"
    ))?;
    let row = statement
        .query_row(
            params![id.lane.as_array().as_slice(), int(id.generation)],
            raw,
        )
        .optional()?;
    row.map(decode).transpose()
}

fn find(conn: &Connection, query: LaneQuery) -> Result<Vec<LaneState>, StoreError> {
    let rows = match query {
        LaneQuery::Unsettled => {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM lanes WHERE unsettled != 0 AND closed = 0
                 ORDER BY lane, generation"
            ))?;
            let rows = statement.query_map([], raw)?;
            rows.collect::<Result<Vec<_>, _>>()?
        }
        LaneQuery::Channel(channel) => {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM lanes WHERE channel = ?1 ORDER BY lane, generation"
            ))?;
            let rows = statement.query_map([channel.as_array().as_slice()], raw)?;
            rows.collect::<Result<Vec<_>, _>>()?
        }
    };
    rows.into_iter().map(decode).collect()
}

/// A row as SQLite types, decoded into a [`LaneState`] by [`decode`].
struct RawRow {
    lane: Vec<u8>,
    generation: i64,
    channel: Vec<u8>,
    delegate: Option<Vec<u8>>,
    signer: Vec<u8>,
    last_seq: i64,
    owed: i64,
    settled: i64,
    voucher: Option<Vec<u8>>,
    signature: Option<Vec<u8>>,
    closed: bool,
}

fn raw(row: &Row<'_>) -> rusqlite::Result<RawRow> {
    Ok(RawRow {
        lane: row.get(0)?,
        generation: row.get(1)?,
        channel: row.get(2)?,
        delegate: row.get(3)?,
        signer: row.get(4)?,
        last_seq: row.get(5)?,
        owed: row.get(6)?,
        settled: row.get(7)?,
        voucher: row.get(8)?,
        signature: row.get(9)?,
        closed: row.get(10)?,
    })
}

fn decode(row: RawRow) -> Result<LaneState, StoreError> {
    let key = |bytes: &[u8], what: &str| {
        <[u8; 32]>::try_from(bytes)
            .map(Pubkey::new_from_array)
            .map_err(|_| StoreError::Corrupt(format!("{what} is {} bytes", bytes.len())))
    };
    let best = match (row.voucher, row.signature) {
        (Some(voucher), Some(signature)) => Some(SignedVoucher {
            voucher: voucher::decode(&voucher)
                .map_err(|e| StoreError::Corrupt(format!("voucher: {e}")))?,
            signature: <[u8; SIGNATURE_LEN]>::try_from(signature.as_slice())
                .map_err(|_| StoreError::Corrupt("signature length".into()))?,
        }),
        (None, None) => None,
        _ => return Err(StoreError::Corrupt("a voucher without signature".into())),
    };
    Ok(LaneState {
        id: LaneId {
            lane: key(&row.lane, "lane")?,
            generation: uint(row.generation),
        },
        channel: key(&row.channel, "channel")?,
        delegate: row.delegate.map(|d| key(&d, "delegate")).transpose()?,
        signer: key(&row.signer, "signer")?,
        last_seq: uint(row.last_seq),
        owed: uint(row.owed),
        settled: uint(row.settled),
        best,
        closed: row.closed,
        reserved: 0,
    })
}
