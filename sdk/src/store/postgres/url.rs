//! A store URL: the driver's connection string plus the store's own
//! `amp_*` parameters.

use super::rows::pg;
use crate::durability::Durability;
use crate::store::backend::StoreError;
use std::str::FromStr;
use std::time::Duration;
/// How a [`PostgresStore`](crate::store::PostgresStore) connects and leads.
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
            crate::store::location::is_url("postgres://h/db")
                && crate::store::location::is_url("postgresql://h/db")
        );
        assert!(!crate::store::location::is_url(
            "/var/lib/amp/postgres.sqlite"
        ));
    }
}
