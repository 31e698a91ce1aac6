//! A real PostgreSQL server for the store tests: Debian's `postgresql`
//! package (installed by `scripts/install-test-deps.sh`), a throwaway
//! cluster per test (`initdb` in a temporary directory, `pg_ctl` on a free
//! 127.0.0.1 port), stopped and deleted on drop.
//!
//! PostgreSQL refuses to run as root; when the tests run as root (CI), the
//! cluster belongs to the `postgres` user and every server command runs
//! through `runuser -u postgres --`.
//!
//! Without the binaries the tests are skipped with a message, except when
//! `CI=true`: there a missing PostgreSQL is a failure, never a silent skip.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running cluster. Stopped on drop.
pub struct PgServer {
    bin: PathBuf,
    data: PathBuf,
    as_postgres: bool,
    pub port: u16,
    _dir: tempfile::TempDir,
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding `initdb` and `pg_ctl`.
fn bin_dir() -> Option<PathBuf> {
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, b)| b)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl PgServer {
    /// Starts a cluster, or `None` (skip) when PostgreSQL is not installed
    /// outside CI. Panics in CI without PostgreSQL, or when it fails to start.
    pub fn start() -> Option<PgServer> {
        let Some(bin) = bin_dir() else {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!(
                    "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); \
                     run scripts/install-test-deps.sh"
                );
            }
            eprintln!("skipping: PostgreSQL not installed (scripts/install-test-deps.sh)");
            return None;
        };
        let dir = tempfile::tempdir().expect("temporary directory");
        let as_postgres = is_root();
        if as_postgres {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the cluster directory to postgres");
        }
        let data = dir.path().join("data");
        let server = PgServer {
            bin,
            data,
            as_postgres,
            port: free_port(),
            _dir: dir,
        };
        server.run(
            "initdb",
            &[
                "-D",
                server.data.to_str().unwrap(),
                "-U",
                "verdict",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            server.port,
            server._dir.path().display()
        );
        let log = server._dir.path().join("postgres.log");
        server.run(
            "pg_ctl",
            &[
                "-D",
                server.data.to_str().unwrap(),
                "-o",
                &options,
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        Some(server)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let out = self
            .command(program)
            .args(args)
            .current_dir(self._dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        if !out.status.success() {
            let log =
                std::fs::read_to_string(self._dir.path().join("postgres.log")).unwrap_or_default();
            panic!(
                "{program} failed: {}\n{}\n{log}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Creates database `name` and returns its URL.
    pub fn database(&self, name: &str) -> String {
        let out = self
            .command("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "verdict",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                &format!("CREATE DATABASE {name}"),
            ])
            .current_dir(self._dir.path())
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "CREATE DATABASE {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!("postgres://verdict@127.0.0.1:{}/{name}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self._dir.path()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args(["-D", self.data.to_str().unwrap(), "-m", "immediate", "stop"])
            .current_dir(self._dir.path())
            .output();
    }
}
