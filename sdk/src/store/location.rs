//! Choosing a store by where it is: a file path means SQLite (the default),
//! a `postgres://` or `postgresql://` URL means PostgreSQL.

use std::path::Path;
use std::sync::Arc;

use super::{Durability, SqliteStore, StoreError, VoucherStore};

/// Opens the store at `location`, as a configuration file's `store` names it:
///
/// * `postgres://user:password@host:port/database` (or `postgresql://`): a
///   [`PostgresStore`](super::PostgresStore) that several server replicas can
///   share (needs the `postgres` feature; its URL parameters are documented
///   in [`postgres`](super::postgres));
/// * anything else: the path of a [`SqliteStore`] file, which one process
///   at a time can open.
///
/// `durability` applies to both.
pub async fn open(
    location: impl AsRef<Path>,
    durability: Durability,
) -> Result<Arc<dyn VoucherStore>, StoreError> {
    let location = location.as_ref();
    if let Some(url) = location.to_str().filter(|l| is_url(l)) {
        return open_url(url, durability).await;
    }
    let path = location.to_owned();
    // Opening reads and checks the file: keep it off the runtime's threads.
    let store = tokio::task::spawn_blocking(move || SqliteStore::open(path, durability))
        .await
        .map_err(|e| StoreError::Corrupt(format!("opening the store: {e}")))??;
    Ok(Arc::new(store))
}

/// Is `location` a PostgreSQL URL (rather than a SQLite file's path)?
pub fn is_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

#[cfg(feature = "postgres")]
async fn open_url(url: &str, durability: Durability) -> Result<Arc<dyn VoucherStore>, StoreError> {
    Ok(Arc::new(
        super::PostgresStore::connect(url, durability).await?,
    ))
}

#[cfg(not(feature = "postgres"))]
async fn open_url(
    _url: &str,
    _durability: Durability,
) -> Result<Arc<dyn VoucherStore>, StoreError> {
    Err(StoreError::Corrupt(
        "a postgres:// store needs amp-sdk's `postgres` feature".into(),
    ))
}
