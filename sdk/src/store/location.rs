//! Choosing a store by where it is: a file path means SQLite (the default),
//! a `postgres://` or `postgresql://` URL means PostgreSQL.

use std::path::Path;
use std::sync::Arc;

use super::backend::{StoreError, VoucherStore};
use crate::durability::Durability;

/// Opens the store at `location`, as a configuration file's `store` names it:
///
/// * `postgres://user:password@host:port/database` (or `postgresql://`): a
///   [`PostgresStore`](super::postgres::PostgresStore) that several server replicas can
///   share (needs the `postgres` feature; its URL parameters are documented
///   in [`postgres`](super::postgres));
/// * anything else: the path of a `SqliteStore` file, which one process
///   at a time can open (needs the `sqlite` feature).
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
    open_file(location, durability).await
}

#[cfg(feature = "sqlite")]
async fn open_file(
    path: &Path,
    durability: Durability,
) -> Result<Arc<dyn VoucherStore>, StoreError> {
    let path = path.to_owned();
    // Opening reads and checks the file: keep it off the runtime's threads.
    let store =
        tokio::task::spawn_blocking(move || super::sqlite::SqliteStore::open(path, durability))
            .await
            .map_err(|e| StoreError::Corrupt(format!("opening the store: {e}")))??;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "sqlite"))]
async fn open_file(
    _path: &Path,
    _durability: Durability,
) -> Result<Arc<dyn VoucherStore>, StoreError> {
    Err(StoreError::Unsupported(
        "a SQLite store file needs amp-sdk's `sqlite` feature".into(),
    ))
}

/// Is `location` a PostgreSQL URL (rather than a SQLite file's path)?
pub fn is_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

#[cfg(feature = "postgres")]
async fn open_url(url: &str, durability: Durability) -> Result<Arc<dyn VoucherStore>, StoreError> {
    Ok(Arc::new(
        super::postgres::PostgresStore::connect(url, durability).await?,
    ))
}

#[cfg(not(feature = "postgres"))]
async fn open_url(
    _url: &str,
    _durability: Durability,
) -> Result<Arc<dyn VoucherStore>, StoreError> {
    Err(StoreError::Unsupported(
        "a postgres:// store needs amp-sdk's `postgres` feature".into(),
    ))
}
