//! Keypair files in the Solana CLI's format (a JSON array of the 64 bytes
//! secret ‖ public), so agents share keys with `solana-keygen` and wallets.
//!
//! Writing never overwrites: a keypair file may be the only copy of a funded
//! key. New files are created readable by their owner only.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, KEYPAIR_LENGTH, SECRET_KEY_LENGTH};
use solana_keypair::Keypair;

/// Largest file read: generous for pretty-printed JSON, small enough that a
/// wrong path (a log, a disk image) is refused rather than loaded.
pub const MAX_FILE_LEN: u64 = 16 * 1024;

/// Why keypair bytes were refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeypairFormatError {
    /// Not a JSON array of numbers from 0 to 255.
    #[error("not a JSON array of numbers from 0 to 255: {0}")]
    NotJson(#[source] serde_json::Error),
    /// An array of this many bytes instead of 64.
    #[error("holds {0} bytes; a keypair has 64 (secret then public key)")]
    WrongLength(usize),
    /// The public half does not belong to the secret half: the file is corrupt.
    #[error("the public key (last 32 bytes) does not belong to the secret key (first 32)")]
    Mismatch,
}

/// Why a keypair file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeypairError {
    /// [`read()`] found no file at this path.
    #[error("no keypair file at {}", .0.display())]
    Missing(PathBuf),
    /// [`write()`] found a file already at this path and left it untouched.
    #[error("{} already exists; keypair files are never overwritten", .0.display())]
    Exists(PathBuf),
    /// The file is over [`MAX_FILE_LEN`] bytes, so it was not read.
    #[error("{} is larger than {MAX_FILE_LEN} bytes: not a keypair file", .0.display())]
    TooLarge(PathBuf),
    /// Reading or writing failed otherwise (permissions, a directory, a full disk).
    #[error("{}: {source}", path.display())]
    Io {
        /// The keypair file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The file was read but does not hold a keypair.
    #[error("{}: {source}", path.display())]
    Invalid {
        /// The keypair file.
        path: PathBuf,
        /// What is wrong with its contents.
        #[source]
        source: KeypairFormatError,
    },
}

/// Reads a keypair file written by the Solana CLI (or by [`write()`]).
pub fn read(path: impl AsRef<Path>) -> Result<Keypair, KeypairError> {
    let path = path.as_ref();
    let io_error = |source: io::Error| match source.kind() {
        io::ErrorKind::NotFound => KeypairError::Missing(path.to_owned()),
        _ => KeypairError::Io {
            path: path.to_owned(),
            source,
        },
    };
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|file| file.take(MAX_FILE_LEN + 1).read_to_end(&mut bytes))
        .map_err(io_error)?;
    if bytes.len() as u64 > MAX_FILE_LEN {
        return Err(KeypairError::TooLarge(path.to_owned()));
    }
    from_json(&bytes).map_err(|source| KeypairError::Invalid {
        path: path.to_owned(),
        source,
    })
}

/// Writes `keypair` to a new file at `path`, mode 0600 on unix.
pub fn write(keypair: &Keypair, path: impl AsRef<Path>) -> Result<(), KeypairError> {
    let path = path.as_ref();
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|source| match source.kind() {
        io::ErrorKind::AlreadyExists => KeypairError::Exists(path.to_owned()),
        _ => KeypairError::Io {
            path: path.to_owned(),
            source,
        },
    })?;
    file.write_all(to_json(keypair).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| KeypairError::Io {
            path: path.to_owned(),
            source,
        })
}

/// Parses the CLI's JSON form.
pub fn from_json(json: &[u8]) -> Result<Keypair, KeypairFormatError> {
    let bytes: Vec<u8> = serde_json::from_slice(json).map_err(KeypairFormatError::NotJson)?;
    let bytes: &[u8; KEYPAIR_LENGTH] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| KeypairFormatError::WrongLength(bytes.len()))?;
    let key = SigningKey::from_keypair_bytes(bytes).map_err(|_| KeypairFormatError::Mismatch)?;
    Ok(Keypair::new_from_array(key.to_bytes()))
}

/// The CLI's JSON form: `[n,n,...]` with the 32 secret bytes, then the 32 public ones.
pub fn to_json(keypair: &Keypair) -> String {
    serde_json::to_string(&keypair.to_bytes()[..]).expect("a byte slice always serialises")
}

const _: () = assert!(KEYPAIR_LENGTH == 2 * SECRET_KEY_LENGTH);

#[cfg(test)]
mod tests {
    use super::*;
    use solana_signer::Signer;

    #[test]
    fn json_is_the_cli_format() {
        let keypair = Keypair::new_from_array([1; 32]);
        let json = to_json(&keypair);
        assert!(json.starts_with("[1,1,1,"), "{json}");
        assert!(!json.contains(' '));
        // The CLI's own reader agrees, both ways.
        let theirs = solana_keypair::read_keypair(&mut json.as_bytes()).unwrap();
        assert_eq!(theirs.pubkey(), keypair.pubkey());
        let mut cli = Vec::new();
        solana_keypair::write_keypair(&keypair, &mut cli).unwrap();
        assert_eq!(from_json(&cli).unwrap().pubkey(), keypair.pubkey());
    }

    #[test]
    fn refuses_bad_content() {
        let good = Keypair::new_from_array([1; 32]).to_bytes();
        assert!(matches!(
            from_json(b"hello"),
            Err(KeypairFormatError::NotJson(_))
        ));
        assert!(matches!(
            from_json(b"[1, 2, 300]"),
            Err(KeypairFormatError::NotJson(_))
        ));
        assert!(matches!(
            from_json(b"{\"secret\": [1]}"),
            Err(KeypairFormatError::NotJson(_))
        ));
        let short = serde_json::to_vec(&good[..32]).unwrap();
        assert!(matches!(
            from_json(&short),
            Err(KeypairFormatError::WrongLength(32))
        ));
        let mut mismatched = good;
        mismatched[63] ^= 1;
        let mismatched = serde_json::to_vec(&mismatched[..]).unwrap();
        assert!(matches!(
            from_json(&mismatched),
            Err(KeypairFormatError::Mismatch)
        ));
        // Whitespace, as a person might write it, is fine.
        let pretty = serde_json::to_vec_pretty(&good[..]).unwrap();
        assert_eq!(from_json(&pretty).unwrap().to_bytes(), good);
    }

    #[test]
    fn files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("id.json");
        assert!(matches!(read(&path), Err(KeypairError::Missing(_))));

        let keypair = Keypair::new();
        write(&keypair, &path).unwrap();
        assert_eq!(read(&path).unwrap().to_bytes(), keypair.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            write(&Keypair::new(), &path),
            Err(KeypairError::Exists(_))
        ));
        assert_eq!(read(&path).unwrap().to_bytes(), keypair.to_bytes());

        let garbage = dir.path().join("garbage.json");
        std::fs::write(&garbage, b"not json").unwrap();
        let err = read(&garbage).unwrap_err();
        assert!(matches!(
            err,
            KeypairError::Invalid {
                source: KeypairFormatError::NotJson(_),
                ..
            }
        ));
        assert!(err.to_string().contains("garbage.json"), "{err}");

        let large = dir.path().join("large.json");
        std::fs::write(&large, vec![b' '; MAX_FILE_LEN as usize + 1]).unwrap();
        assert!(matches!(read(&large), Err(KeypairError::TooLarge(_))));

        assert!(matches!(read(dir.path()), Err(KeypairError::Io { .. })));
    }
}
