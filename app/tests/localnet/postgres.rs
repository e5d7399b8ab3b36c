//! A PostgreSQL schema for one test, in the database `AMP_TEST_POSTGRES_URL`
//! names (`scripts/test-postgres start` prints one; `.ci/run` sets it),
//! dropped when the test passes; as in the service tests
//! (`tests/tests/service/support/postgres.rs`).
//!
//! Without the variable a PostgreSQL test says it was skipped, on the
//! terminal (past the test harness's capture), and returns; with
//! `AMP_REQUIRE_POSTGRES` set (CI sets it) a missing URL fails the test.

use std::io::Write;

pub const URL_VAR: &str = "AMP_TEST_POSTGRES_URL";
pub const REQUIRE_VAR: &str = "AMP_REQUIRE_POSTGRES";

/// A schema of its own in the test server's database.
pub struct Scope {
    server: String,
    pub schema: String,
}

impl Scope {
    /// A fresh schema for `test`, or `None` (skipped) without a server.
    pub async fn new(test: &str) -> Option<Self> {
        let server = match std::env::var(URL_VAR) {
            Ok(url) if !url.trim().is_empty() => url.trim().to_owned(),
            _ => {
                assert!(
                    std::env::var_os(REQUIRE_VAR).is_none(),
                    "{REQUIRE_VAR} is set but {URL_VAR} is not: the PostgreSQL tests cannot run"
                );
                // Straight to the terminal: the harness captures print! and
                // eprint! of passing tests, and this line must be seen.
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED {test}: {URL_VAR} is not set, so this PostgreSQL test did not run \
                     (export {URL_VAR}=\"$(scripts/test-postgres start)\" to run it)"
                );
                return None;
            }
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let schema = format!("amp_localnet_{}_{nanos}", std::process::id());
        let scope = Self { server, schema };
        scope
            .admin(&format!("CREATE SCHEMA {}", scope.schema))
            .await;
        Some(scope)
    }

    /// The store URL of this schema, with extra `amp_*` parameters (`amp_lease=1`).
    pub fn url(&self, params: &str) -> String {
        let separator = if self.server.contains('?') { '&' } else { '?' };
        let mut url = format!(
            "{}{separator}options=-c%20search_path%3D{}",
            self.server, self.schema
        );
        if !params.is_empty() {
            url.push('&');
            url.push_str(params);
        }
        url
    }

    /// Runs `sql` on the server, outside the schema.
    pub async fn admin(&self, sql: &str) {
        connect(&self.server)
            .await
            .batch_execute(sql)
            .await
            .unwrap();
    }

    /// Runs a query in the schema and returns its rows.
    pub async fn query(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        connect(&self.url("")).await.query(sql, &[]).await.unwrap()
    }

    /// Drops the schema (call it when the test passed; a failed test leaves
    /// its schema for a look).
    pub async fn drop(self) {
        self.admin(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .await;
    }
}

/// A driver connection (stripped of the store's own `amp_*` parameters).
async fn connect(url: &str) -> tokio_postgres::Client {
    let (config, _) = amp_sdk::store::postgres::parse_url(url).unwrap();
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}
