//! The changes a test makes to a server's files, the same on the real
//! Nextcloud (over WebDAV and OCS, [`Dav`]) and on the simulator (through
//! its API, [`SimFiles`]), so one scripted scenario runs against both.

use anyhow::Result;
use nextcloud_sim::{ShareWith, Simulator};

use crate::nextcloud::Dav;

pub trait Files {
    fn mkdir(&self, path: &str) -> Result<()>;
    /// Creates or overwrites a file; its file id.
    fn put(&self, path: &str, content: &[u8]) -> Result<u64>;
    /// A rename or a move, never over an existing entry.
    fn rename(&self, from: &str, to: &str) -> Result<()>;
    fn copy(&self, from: &str, to: &str) -> Result<()>;
    /// Into the trash bin.
    fn delete(&self, path: &str) -> Result<()>;
    /// Back from the trash bin to where it was deleted.
    fn restore(&self, fileid: u64) -> Result<()>;
    fn fileid(&self, path: &str) -> Result<Option<u64>>;
    /// Shares `path` with the user `with`; the share id.
    fn share_with_user(&self, path: &str, with: &str, permissions: u32) -> Result<u64>;
}

impl Files for Dav {
    fn mkdir(&self, path: &str) -> Result<()> {
        Dav::mkdir(self, path)
    }
    fn put(&self, path: &str, content: &[u8]) -> Result<u64> {
        Dav::put(self, path, content)
    }
    fn rename(&self, from: &str, to: &str) -> Result<()> {
        Dav::rename(self, from, to)
    }
    fn copy(&self, from: &str, to: &str) -> Result<()> {
        Dav::copy(self, from, to)
    }
    fn delete(&self, path: &str) -> Result<()> {
        Dav::delete(self, path)
    }
    fn restore(&self, fileid: u64) -> Result<()> {
        Dav::restore(self, fileid)
    }
    fn fileid(&self, path: &str) -> Result<Option<u64>> {
        Dav::fileid(self, path)
    }
    fn share_with_user(&self, path: &str, with: &str, permissions: u32) -> Result<u64> {
        Dav::share_with_user(self, path, with, permissions)
    }
}

/// One simulated user's files.
pub struct SimFiles {
    pub sim: Simulator,
    pub user: String,
}

impl Files for SimFiles {
    fn mkdir(&self, path: &str) -> Result<()> {
        Ok(self.sim.as_user(&self.user).mkdir(path).map(drop)?)
    }
    fn put(&self, path: &str, content: &[u8]) -> Result<u64> {
        Ok(self.sim.as_user(&self.user).put(path, content.to_vec())?)
    }
    fn rename(&self, from: &str, to: &str) -> Result<()> {
        Ok(self.sim.as_user(&self.user).rename(from, to)?)
    }
    fn copy(&self, from: &str, to: &str) -> Result<()> {
        Ok(self.sim.as_user(&self.user).copy(from, to).map(drop)?)
    }
    fn delete(&self, path: &str) -> Result<()> {
        Ok(self.sim.as_user(&self.user).delete(path)?)
    }
    fn restore(&self, fileid: u64) -> Result<()> {
        Ok(self.sim.as_user(&self.user).restore(fileid)?)
    }
    fn fileid(&self, path: &str) -> Result<Option<u64>> {
        Ok(self.sim.as_user(&self.user).fileid(path))
    }
    fn share_with_user(&self, path: &str, with: &str, permissions: u32) -> Result<u64> {
        Ok(self.sim.share(
            &self.user,
            path,
            ShareWith::User(with.to_string()),
            permissions,
        )?)
    }
}
