//! How hard a write tries to survive a crash: one choice shared by the
//! agent's lane file and the service's voucher stores.

/// How hard a commit tries to survive a crash.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Durability {
    /// Every commit reaches the disk (`fsync`; SQLite's `synchronous=FULL`)
    /// before the request it pays for is answered; survives a power loss.
    #[default]
    Full,
    /// Commits reach the OS at once and the disk later (SQLite's
    /// `synchronous=NORMAL`); survives the process dying, not the machine.
    Normal,
}

impl std::fmt::Display for Durability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Durability::Full => "full",
            Durability::Normal => "normal",
        })
    }
}
