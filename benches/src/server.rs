//! A `mercato serve` started for one benchmark run, in a throw-away data
//! directory (or one the caller names and keeps), and stopped (SIGTERM,
//! then SIGKILL) when dropped, on success, error or Ctrl-C alike.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rand::Rng;

use crate::Error;
use crate::client::{Connection, Target};

/// How long the server may take to answer `GET /readyz` with 200.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a SIGTERM'ed server may take to exit before it is SIGKILL'ed.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(15);

/// A running server and its temp dir, if it has one; both go away on drop.
pub(crate) struct SpawnedServer {
    child: Option<Child>,
    /// The origin, `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    /// The admin token it was started with.
    pub(crate) admin_token: String,
    log_path: PathBuf,
    data_dir: PathBuf,
    // Held for its drop, after `drop` has stopped the server: the data
    // directory is deleted once the server is gone. `None` when the caller
    // named the directory: it is kept.
    _directory: Option<tempfile::TempDir>,
}

impl SpawnedServer {
    /// Starts `binary serve --empty` on a free loopback port with the given
    /// durability and waits until it is ready.
    pub(crate) async fn start(binary: &Path, durability: &str) -> Result<SpawnedServer, Error> {
        let directory = tempfile::Builder::new()
            .prefix("mercato-bench-")
            .tempdir()?;
        SpawnedServer::start_in(
            directory,
            binary,
            durability,
            &["--empty".into()],
            STARTUP_TIMEOUT,
        )
        .await
    }

    /// Starts `binary serve ARGS...` with its data in `directory/data`
    /// (which may already hold a store) and waits up to `ready_timeout` for
    /// `GET /readyz` to answer 200. The directory goes away with the server.
    pub(crate) async fn start_in(
        directory: tempfile::TempDir,
        binary: &Path,
        durability: &str,
        args: &[std::ffi::OsString],
        ready_timeout: Duration,
    ) -> Result<SpawnedServer, Error> {
        let data_dir = directory.path().join("data");
        let log_path = directory.path().join("server.log");
        SpawnedServer::launch(
            data_dir,
            log_path,
            Some(directory),
            binary,
            durability,
            args,
            ready_timeout,
        )
        .await
    }

    /// Starts `binary serve ARGS...` with its data in `data_dir` and its
    /// output in `log_path`, both kept when the server goes, and waits up
    /// to `ready_timeout` for `GET /readyz` to answer 200.
    pub(crate) async fn start_at(
        data_dir: PathBuf,
        log_path: PathBuf,
        binary: &Path,
        durability: &str,
        args: &[std::ffi::OsString],
        ready_timeout: Duration,
    ) -> Result<SpawnedServer, Error> {
        SpawnedServer::launch(
            data_dir,
            log_path,
            None,
            binary,
            durability,
            args,
            ready_timeout,
        )
        .await
    }

    async fn launch(
        data_dir: PathBuf,
        log_path: PathBuf,
        directory: Option<tempfile::TempDir>,
        binary: &Path,
        durability: &str,
        args: &[std::ffi::OsString],
        ready_timeout: Duration,
    ) -> Result<SpawnedServer, Error> {
        let port = free_port()?;
        let admin_token: String = {
            let mut rng = rand::rng();
            (0..32)
                .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
                .collect()
        };
        let log = File::create(&log_path)?;
        let mut command = Command::new(binary);
        command
            .arg("serve")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(args)
            .arg("--durability")
            .arg(durability)
            .env("MERCATO_ADMIN_TOKEN", &admin_token)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // A request log line per reservation would cost the server more CPU
        // than the reservation; keep its logging to warnings unless asked.
        if std::env::var_os("MERCATO_LOG").is_none() {
            command.env("MERCATO_LOG", "warn");
        }
        let child = command
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", binary.display()))?;
        let mut server = SpawnedServer {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}"),
            admin_token,
            log_path,
            data_dir,
            _directory: directory,
        };
        server.wait_ready(ready_timeout).await?;
        Ok(server)
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The store's directory (`--data-dir`).
    pub(crate) fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stops the server now (SIGTERM, then SIGKILL after a grace) and
    /// answers how it exited; the data directory stays until the drop.
    /// `None` when it was already stopped or its status is unknown.
    pub(crate) fn shut_down(&mut self) -> Option<ExitStatus> {
        self.stop()
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<(), Error> {
        let target = Target::resolve(&self.url, &self.admin_token).await?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                return Err(format!(
                    "the server exited during start-up ({status}); its log:\n{}",
                    self.log_tail()
                )
                .into());
            }
            if let Ok(mut connection) = Connection::open(&target).await
                && let Ok(answer) = connection
                    .send_within(Duration::from_secs(2), Method::GET, "/readyz", None)
                    .await
                && answer.status == StatusCode::OK
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the server was not ready within {} s; its log:\n{}",
                    timeout.as_secs(),
                    self.log_tail()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The last lines of the server's output, for error messages.
    pub(crate) fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(status)) => {
                    if !status.success() {
                        eprintln!("[bench] note: the server exited with {status} after SIGTERM");
                    }
                    return Some(status);
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
        eprintln!(
            "[bench] the server did not exit within {} s of SIGTERM: killing it",
            SHUTDOWN_TIMEOUT.as_secs()
        );
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> Result<u16, Error> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}
