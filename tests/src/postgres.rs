//! A real PostgreSQL server for the tests that need one: initialised in a
//! temporary directory, listening on a free loopback port, stopped and
//! deleted when dropped. The binaries come from PATH or, where Debian's
//! `postgresql` package puts them (off PATH), the newest
//! `/usr/lib/postgresql/*/bin`; without them a test says it skipped.

use std::ffi::CString;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The role the tests' connector logs in as; it owns every database that
/// [`Postgres::create_database`] makes.
pub const ROLE: &str = "connector";

/// Every wait on the server (start, stop) gives up after this many seconds.
const WAIT_SECONDS: &str = "30";

/// The binaries of one PostgreSQL installation.
#[derive(Debug, Clone)]
struct Binaries {
    initdb: PathBuf,
    pg_ctl: PathBuf,
    psql: PathBuf,
}

impl Binaries {
    /// `initdb` on PATH, else in the newest `/usr/lib/postgresql/*/bin`;
    /// `pg_ctl` (and the `postgres` it starts) beside it, `psql` beside it or
    /// on PATH.
    fn find() -> Result<Binaries, String> {
        let path: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        let on_path = |name: &str| {
            path.iter()
                .map(|dir| dir.join(name))
                .find(|file| is_executable(file))
        };
        let initdb = match on_path("initdb") {
            Some(initdb) => initdb,
            None => newest_debian_initdb().ok_or(
                "no PostgreSQL: initdb is neither on PATH nor in /usr/lib/postgresql/*/bin \
                 (Debian's `postgresql` package installs it)",
            )?,
        };
        // A symlink on PATH (/usr/local/bin/initdb) leads to the real bin
        // directory, where pg_ctl, postgres and psql of the same version are.
        let initdb = initdb.canonicalize().unwrap_or(initdb);
        let bin = initdb.parent().unwrap_or(Path::new("/")).to_path_buf();
        for needed in ["pg_ctl", "postgres"] {
            if !is_executable(&bin.join(needed)) {
                return Err(format!(
                    "no PostgreSQL server: {} has initdb but no {needed}",
                    bin.display()
                ));
            }
        }
        let psql = Some(bin.join("psql"))
            .filter(|p| is_executable(p))
            .or_else(|| on_path("psql"))
            .ok_or_else(|| format!("no psql, neither in {} nor on PATH", bin.display()))?;
        Ok(Binaries {
            initdb,
            pg_ctl: bin.join("pg_ctl"),
            psql,
        })
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `/usr/lib/postgresql/<N>/bin/initdb` of the highest version N.
fn newest_debian_initdb() -> Option<PathBuf> {
    let version = |name: &str| -> Option<Vec<u32>> {
        name.split('.').map(|part| part.parse().ok()).collect()
    };
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = version(entry.file_name().to_str()?)?;
            let initdb = entry.path().join("bin/initdb");
            is_executable(&initdb).then_some((version, initdb))
        })
        .max()
        .map(|(_, initdb)| initdb)
}

/// The user and group to run initdb and the server as when we are root
/// (initdb refuses root): `nobody`, `nogroup` (else nobody's own group).
fn unprivileged() -> Result<(u32, u32), String> {
    let no_user = "running as root, and there is no user `nobody` to run PostgreSQL as \
                   (initdb refuses root)";
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let name = CString::new("nobody").unwrap();
    // SAFETY: the reentrant lookup writes only into `passwd` and `buf`,
    // both alive and sized as given.
    let mut passwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut passwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() {
        return Err(no_user.into());
    }
    let (uid, mut gid) = (passwd.pw_uid, passwd.pw_gid);
    let name = CString::new("nogroup").unwrap();
    // SAFETY: as above.
    let mut group: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    let rc = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut group,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        )
    };
    if rc == 0 && !found.is_null() {
        gid = group.gr_gid;
    }
    Ok((uid, gid))
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// Letters and digits, as passwords that need no quoting anywhere.
fn random_string(len: usize) -> String {
    (0..len).map(|_| fastrand::alphanumeric()).collect()
}

/// What a failed command said, on one line.
fn one_line(out: &Output) -> String {
    let text = format!(
        "{} {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("{} ({})", text, out.status)
}

/// A PostgreSQL server of its own, in a temporary directory, on a free
/// loopback port; stopped and deleted on drop.
pub struct Postgres {
    bin: Binaries,
    /// Holds `data/` (the cluster), `log` (the server's) and the server's
    /// unix socket; deleted after the server stops (see `Drop`).
    dir: tempfile::TempDir,
    port: u16,
    password: String,
    /// The user and group initdb, the server and psql run as, when we are root.
    run_as: Option<(u32, u32)>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("dir", &self.dir.path())
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Postgres {
    /// Starts one; `Err(one-line reason)` when this machine cannot (binaries
    /// missing, ...), for the test to print "skipped: {reason}" and return.
    pub fn start() -> Result<Postgres, String> {
        let bin = Binaries::find()?;
        // SAFETY: geteuid cannot fail.
        let root = unsafe { libc::geteuid() } == 0;
        let run_as = if root { Some(unprivileged()?) } else { None };
        let dir = tempfile::Builder::new()
            .prefix("postgres-")
            .tempdir_in(temp_base(root))
            .map_err(|e| format!("no temporary directory for PostgreSQL: {e}"))?;
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", dir.path().display()))?;
        }
        let mut postgres = Postgres {
            bin,
            dir,
            port: 0,
            password: random_string(24),
            run_as,
        };
        postgres.initdb()?;
        // From here on a failure drops `postgres`, which stops whatever
        // started and deletes the directory.
        for attempt in 1.. {
            postgres.port = free_port()?;
            match postgres.pg_ctl_start() {
                Ok(()) => break,
                // Someone took the port between our probe and the server's bind.
                Err(e) if attempt < 3 && e.contains("Address already in use") => continue,
                Err(e) => return Err(e),
            }
        }
        let sql = format!(
            "SET password_encryption = 'scram-sha-256'; \
             CREATE ROLE {ROLE} LOGIN PASSWORD '{}'",
            postgres.password
        );
        postgres.superuser_sql(&sql)?;
        Ok(postgres)
    }

    /// `postgres://connector@127.0.0.1:PORT/<name>` for a database created
    /// fresh by this call (name: letters/digits/_), owned by role
    /// `connector`. No password in the URL.
    pub fn create_database(&self, name: &str) -> String {
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "database name {name:?}: letters, digits and _ only"
        );
        // Quoted, so the name is kept as given (not folded to lower case)
        // and matches the URL.
        self.superuser_sql(&format!("CREATE DATABASE \"{name}\" OWNER {ROLE}"))
            .unwrap_or_else(|e| panic!("{e}"));
        format!("postgres://{ROLE}@127.0.0.1:{}/{name}", self.port)
    }

    /// The password of role `connector` (pg_hba requires scram-sha-256 over
    /// TCP, so a wrong password fails).
    pub fn password(&self) -> &str {
        &self.password
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (fast shutdown: sessions are ended, the data kept).
    pub fn stop(&self) {
        self.pg_ctl_stop("fast").unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts the server again after [`Postgres::stop`], on the same port and
    /// data directory.
    pub fn restart(&self) {
        self.pg_ctl_start().unwrap_or_else(|e| panic!("{e}"));
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("log")
    }

    /// The socket directory, where the superuser gets in without a password.
    fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// `program` as the server's user, in our directory, with no PG*
    /// variable of ours steering it elsewhere.
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PG") {
                command.env_remove(name);
            }
        }
        command
            .env("LC_ALL", "C")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            // std drops the supplementary groups too when it changes uid as root.
            command.uid(uid).gid(gid);
        }
        command
    }

    fn run(&self, what: &str, command: &mut Command) -> Result<Output, String> {
        command
            .output()
            .map_err(|e| format!("{what}: {e}"))
            .and_then(|out| {
                if out.status.success() {
                    Ok(out)
                } else {
                    Err(format!("{what} failed: {}", one_line(&out)))
                }
            })
    }

    /// The cluster, with superuser `postgres` (a random password nobody
    /// needs: the unix socket is trusted) and scram-sha-256 over TCP.
    fn initdb(&self) -> Result<(), String> {
        let pwfile = self.dir.path().join("pwfile");
        std::fs::write(&pwfile, random_string(24))
            .map_err(|e| format!("writing {}: {e}", pwfile.display()))?;
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid))
                .map_err(|e| format!("chown {}: {e}", pwfile.display()))?;
        }
        let result = self.run(
            "initdb",
            self.command(&self.bin.initdb)
                .arg("-D")
                .arg(self.data())
                .args(["-U", "postgres", "--auth-local=trust"])
                .args(["--auth-host=scram-sha-256", "--no-sync"])
                .args(["--locale=C", "--encoding=UTF8"])
                .arg(format!("--pwfile={}", pwfile.display())),
        );
        let _ = std::fs::remove_file(&pwfile);
        result.map(drop)
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        // fsync off: the tests kill workers, never the database, so what the
        // server wrote needs to survive only the server's own fast stops.
        let options = format!(
            "-p {} -k '{}' -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.socket_dir().display()
        );
        self.run(
            "pg_ctl start",
            self.command(&self.bin.pg_ctl)
                .args(["-w", "-t", WAIT_SECONDS, "-D"])
                .arg(self.data())
                .arg("-l")
                .arg(self.log())
                .args(["-o", &options, "start"]),
        )
        .map(drop)
        .map_err(|e| format!("{e}; server log: {}", self.log_tail()))
    }

    fn pg_ctl_stop(&self, mode: &str) -> Result<(), String> {
        self.run(
            "pg_ctl stop",
            self.command(&self.bin.pg_ctl)
                .args(["-w", "-t", WAIT_SECONDS, "-D"])
                .arg(self.data())
                .args(["-m", mode, "stop"]),
        )
        .map(drop)
        .map_err(|e| format!("{e}; server log: {}", self.log_tail()))
    }

    /// Runs `sql` as superuser `postgres` over the unix socket.
    fn superuser_sql(&self, sql: &str) -> Result<(), String> {
        self.run(
            &format!("psql -c {sql:?}"),
            self.command(&self.bin.psql)
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
                .arg(self.socket_dir())
                .args(["-p", &self.port.to_string()])
                .args(["-U", "postgres", "-d", "postgres", "-c", sql])
                .env("PGCONNECT_TIMEOUT", WAIT_SECONDS),
        )
        .map(drop)
    }

    /// The last lines of the server's log, on one line.
    fn log_tail(&self) -> String {
        let log = std::fs::read(self.log()).unwrap_or_default();
        let log = String::from_utf8_lossy(&log);
        let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
        let tail = lines[lines.len().saturating_sub(8)..].join(" | ");
        if tail.is_empty() {
            "(empty)".into()
        } else {
            tail
        }
    }
}

/// Where the directory goes: the temporary directory when its path is short
/// and plain enough for the server's socket (at most 107 bytes on Linux) and
/// its options' quoting, else /tmp; always /tmp as root, whose temporary
/// directory `nobody` may not be able to reach.
fn temp_base(root: bool) -> PathBuf {
    let base = std::env::temp_dir();
    let plain = base.to_str().is_some_and(|s| {
        s.len() <= 60
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
    });
    if plain && !root {
        base
    } else {
        PathBuf::from("/tmp")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Immediate: nothing of a throwaway server needs a clean shutdown.
        // An error only says it was not running; `dir` is deleted after this.
        let _ = self.pg_ctl_stop("immediate");
    }
}

/// A server, or `None` after saying on stderr why there is none.
///
/// Where PostgreSQL must be there (`POSTGRES_TESTS_REQUIRED=1`, which CI
/// sets after installing it), a server that does not start fails the test
/// instead: a broken setup must not pass as a skip.
pub fn start_or_skip() -> Option<Postgres> {
    match Postgres::start() {
        Ok(postgres) => Some(postgres),
        Err(reason) if std::env::var_os("POSTGRES_TESTS_REQUIRED").is_some_and(|v| v == "1") => {
            panic!("POSTGRES_TESTS_REQUIRED=1 but PostgreSQL did not start: {reason}")
        }
        Err(reason) => {
            eprintln!("skipped: {reason}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `psql` over TCP as `connector` into `url` with `password`, running `sql`.
    fn psql_tcp(postgres: &Postgres, url: &str, password: &str, sql: &str) -> Output {
        let mut command = Command::new(&postgres.bin.psql);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PG") {
                command.env_remove(name);
            }
        }
        command
            .args([
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-d",
                url,
                "-c",
                sql,
            ])
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "10")
            .stdin(Stdio::null())
            .output()
            .expect("psql runs")
    }

    fn stdout(out: &Output) -> String {
        assert!(out.status.success(), "psql: {}", one_line(out));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    #[test]
    fn starts_serves_restarts_and_cleans_up() {
        let Some(postgres) = start_or_skip() else {
            return;
        };
        let port = postgres.port();
        let alpha = postgres.create_database("alpha");
        let beta = postgres.create_database("Beta_2");
        assert_eq!(
            alpha,
            format!("postgres://connector@127.0.0.1:{port}/alpha")
        );
        assert_eq!(
            beta,
            format!("postgres://connector@127.0.0.1:{port}/Beta_2")
        );
        let password = postgres.password().to_string();

        // The role owns its databases: it can create tables in them.
        let sql = "CREATE TABLE kept (x int); INSERT INTO kept VALUES (7); SELECT 1";
        assert_eq!(stdout(&psql_tcp(&postgres, &alpha, &password, sql)), "1");
        assert_eq!(
            stdout(&psql_tcp(&postgres, &beta, &password, "SELECT 1")),
            "1"
        );

        let wrong = psql_tcp(&postgres, &alpha, "not-the-password", "SELECT 1");
        assert!(!wrong.status.success(), "a wrong password got in");
        let said = String::from_utf8_lossy(&wrong.stderr);
        assert!(said.contains("password authentication failed"), "{said}");

        postgres.stop();
        let down = psql_tcp(&postgres, &alpha, &password, "SELECT 1");
        assert!(!down.status.success(), "psql got in to a stopped server");
        postgres.restart();
        assert_eq!(postgres.port(), port);
        let sql = "SELECT x FROM kept";
        assert_eq!(stdout(&psql_tcp(&postgres, &alpha, &password, sql)), "7");

        let data = postgres.data();
        let dir = postgres.dir.path().to_path_buf();
        drop(postgres);
        let left = Command::new("pgrep")
            .arg("-f")
            .arg(&data)
            .output()
            .expect("pgrep runs");
        assert!(
            left.stdout.is_empty(),
            "postgres processes outlive the drop: {}",
            String::from_utf8_lossy(&left.stdout)
        );
        assert!(!dir.exists(), "{} outlives the drop", dir.display());
    }
}
