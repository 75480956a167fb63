//! One sync of an account at a time: an OS advisory lock (`flock`) on
//! `<database>.lock`, held for the whole sync.
//!
//! The system drops the lock when its holder exits, however it exits, so a
//! crashed or killed sync never blocks the next one. The file itself stays
//! (removing it would let two processes lock two different files); it holds
//! the process id of the last holder, for the message a second sync shows.

use crate::config::{Config, Database};
use crate::error::{Error, Result};
use crate::lease::{Lease, Take, holder_name};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Held while this process syncs the account; released on drop.
#[derive(Debug)]
pub struct AccountLock {
    file: File,
    path: PathBuf,
}

impl AccountLock {
    /// `<database>.lock`, beside the database.
    pub fn path_for(database: &Path) -> PathBuf {
        let mut name = database.as_os_str().to_os_string();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock of the account whose state is in `database`, or fails
    /// with [`Error::Busy`] at once when another sync holds it.
    pub fn acquire(database: &Path) -> Result<AccountLock> {
        let path = AccountLock::path_for(database);
        let cannot = |e: std::io::Error| {
            Error::Storage(format!(
                "cannot use the lock file `{}`: {e}",
                path.display()
            ))
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(cannot)?;
        }
        // Private like the database beside it.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(cannot)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who = if !holder.is_empty() && holder.bytes().all(|b| b.is_ascii_digit()) {
                    format!("another host-runner (process {holder})")
                } else {
                    "another host-runner".to_string()
                };
                return Err(Error::Busy(format!(
                    "{who} is syncing this account right now: it holds `{}`. Wait until it finishes; a lock whose process died is released by the system",
                    path.display()
                )));
            }
            Err(TryLockError::Error(e)) => return Err(cannot(e)),
        }
        // Best effort: who holds it, for the message above.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .and_then(|()| file.flush());
        Ok(AccountLock { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for AccountLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

/// What keeps a second sync of an account out while one runs: the lock file
/// beside its SQLite database, or its lease in PostgreSQL ([`crate::lease`]).
#[derive(Debug)]
pub enum AccountGuard {
    File(AccountLock),
    Lease(Lease),
}

impl AccountGuard {
    /// Takes the account now, or fails with [`Error::Busy`] when another
    /// sync or worker holds it.
    pub fn acquire(config: &Config) -> Result<AccountGuard> {
        match &config.database {
            Database::Sqlite(path) => AccountLock::acquire(path).map(AccountGuard::File),
            Database::Postgres(target) => {
                let key = config.account_key();
                let (mut conn, _) = crate::store::postgres::connect(target, &key, &config.name)?;
                Lease::take(
                    &mut conn,
                    target,
                    &[key],
                    &holder_name(),
                    config.lease,
                    Take::Now,
                )?
                    .map(AccountGuard::Lease)
                    .ok_or_else(|| {
                        Error::Busy(format!(
                            "another worker holds the lease of account `{}` in {}; wait until it finishes (`host-runner status` shows who), or until its lease expires if it died",
                            config.name, target.url
                        ))
                    })
            }
        }
    }

    /// The token commits must carry (a lease's), if any.
    pub fn token(&self) -> Option<i64> {
        match self {
            AccountGuard::File(_) => None,
            AccountGuard::Lease(lease) => Some(lease.token()),
        }
    }

    /// Lets the account go; with a lease, it is next due after `next_due_in`.
    pub fn release(self, next_due_in: Option<std::time::Duration>) -> Result<()> {
        match self {
            AccountGuard::File(lock) => {
                drop(lock);
                Ok(())
            }
            AccountGuard::Lease(lease) => lease.release(next_due_in),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("sub/state.sqlite");
        let first = AccountLock::acquire(&db).unwrap();
        assert_eq!(first.path(), dir.path().join("sub/state.sqlite.lock"));
        let err = AccountLock::acquire(&db).unwrap_err();
        assert_eq!(err.exit_code(), crate::error::exit_code::BUSY);
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("process {}", std::process::id()))
                && msg.contains("state.sqlite.lock"),
            "{msg}"
        );
        drop(first);
        let again = AccountLock::acquire(&db).unwrap();
        // Another database is another account.
        let _other = AccountLock::acquire(&dir.path().join("other.sqlite")).unwrap();
        drop(again);
        assert!(
            AccountLock::path_for(&db).exists(),
            "the file stays; only the lock goes"
        );
    }

    #[test]
    fn the_lock_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let lock = AccountLock::acquire(&dir.path().join("state.sqlite")).unwrap();
        let mode = std::fs::metadata(lock.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
}
