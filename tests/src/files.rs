//! The changes a test makes to a server's files, the same on the real
//! Nextcloud (over WebDAV and OCS, [`Dav`]) and on the simulator (through
//! its API, [`SimFiles`]), so one scripted scenario runs against both.

use anyhow::{Result, bail};
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
    /// Every path, root first, with whether it is a folder.
    fn paths(&self) -> Result<Vec<(String, bool)>>;
    /// Overwrites a file without the Activity app hearing of it (external
    /// storage, a server-side scan); an error where that cannot be done.
    fn put_unreported(&self, path: &str, content: &[u8]) -> Result<()>;
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
    fn paths(&self) -> Result<Vec<(String, bool)>> {
        let mut paths: Vec<(String, bool)> = self
            .listing()?
            .into_values()
            .map(|e| (e.path, e.is_folder))
            .collect();
        paths.sort();
        Ok(paths)
    }
    fn put_unreported(&self, _path: &str, _content: &[u8]) -> Result<()> {
        bail!("every change over WebDAV is reported")
    }
}

/// One simulated user's files.
pub struct SimFiles {
    pub sim: Simulator,
    pub user: String,
}

impl SimFiles {
    /// The simulator's first user.
    pub fn of(sim: &Simulator) -> SimFiles {
        SimFiles {
            sim: sim.clone(),
            user: sim.options().user_id,
        }
    }
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
    fn paths(&self) -> Result<Vec<(String, bool)>> {
        Ok(self
            .sim
            .as_user(&self.user)
            .listing()
            .into_iter()
            .map(|e| (e.path, e.is_folder))
            .collect())
    }
    fn put_unreported(&self, path: &str, content: &[u8]) -> Result<()> {
        let user = self.sim.as_user(&self.user);
        self.sim
            .without_activity(|| user.put(path, content.to_vec()))?;
        Ok(())
    }
}
