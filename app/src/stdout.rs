//! Keeping stdout for results while an embedded bank runs (`amp demo`, `amp
//! localnet`): natively executed programs print their log lines (`msg!`)
//! with `println!` (`solana-msg` off-chain), which would land in the middle
//! of a report or of its JSON. While a
//! [`StdoutToStderr`] guard lives, whatever is written to file descriptor 1
//! goes to stderr instead.

use std::io::Write;

/// Sends fd 1 to fd 2 until dropped.
pub struct StdoutToStderr {
    saved: libc::c_int,
}

impl StdoutToStderr {
    /// Redirects, or does nothing (returns `None`) if the descriptors cannot be duplicated.
    pub fn start() -> Option<Self> {
        let _ = std::io::stdout().flush();
        // SAFETY: dup and dup2 on the process's standard descriptors; no Rust
        // object owns fd 1 (std's handle writes to the number, not a file object).
        let saved = unsafe { libc::dup(libc::STDOUT_FILENO) };
        if saved < 0 {
            return None;
        }
        // SAFETY: as above; on failure stdout is left as it was.
        if unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) } < 0 {
            // SAFETY: `saved` is a descriptor we own.
            unsafe { libc::close(saved) };
            return None;
        }
        Some(Self { saved })
    }
}

impl Drop for StdoutToStderr {
    fn drop(&mut self) {
        let _ = std::io::stdout().flush();
        // SAFETY: puts the saved descriptor back on fd 1 and releases the copy.
        unsafe {
            libc::dup2(self.saved, libc::STDOUT_FILENO);
            libc::close(self.saved);
        }
    }
}
