//! [`LogStorage`]: where the write-ahead log's segment files live.
//!
//! The log needs only a handful of file operations, and every one of them
//! goes through this trait, so that the log can live somewhere other than
//! the store's directory and so that tests can put the log on a simulated
//! disk that forgets what was not synced (the power-loss test). The default,
//! [`LogDirectory`], is a directory on the local file system.
//!
//! What the log relies on, and what an implementation must provide: a file's
//! bytes and length are durable once [`LogFile::sync_data`] returns; a name
//! created, renamed or removed is durable once [`LogStorage::sync_names`]
//! returns; a rename replaces the target atomically.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

/// Where the write-ahead log's files live: a flat namespace of named files.
/// Object safe; passed as `Arc<dyn LogStorage>` in
/// [`EngineConfig::log_storage`](crate::EngineConfig::log_storage).
pub trait LogStorage: Send + Sync + fmt::Debug {
    /// The names of the files present, in any order.
    fn list(&self) -> io::Result<Vec<String>>;
    /// A whole file's bytes.
    fn read(&self, name: &str) -> io::Result<Vec<u8>>;
    /// Creates an empty file, replacing any file of that name. Its name is
    /// durable after the next [`LogStorage::sync_names`].
    fn create(&self, name: &str) -> io::Result<Box<dyn LogFile>>;
    /// Renames a file, replacing any file named `to`.
    fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Removes a file.
    fn remove(&self, name: &str) -> io::Result<()>;
    /// Makes every create, rename and remove so far durable (for a
    /// directory: fsync of the directory itself).
    fn sync_names(&self) -> io::Result<()>;
    /// A short description for messages, such as the directory's path.
    fn describe(&self, name: &str) -> String;
}

/// One open log file, written at offsets.
pub trait LogFile: Send + fmt::Debug {
    /// Writes all of `data` at `offset`.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;
    /// Sets the file's length, filling with zeros when it grows.
    fn set_len(&mut self, len: u64) -> io::Result<()>;
    /// Makes the file's bytes and length durable.
    fn sync_data(&mut self) -> io::Result<()>;
}

/// The default [`LogStorage`]: files in a directory of the local file system.
#[derive(Debug, Clone)]
pub struct LogDirectory {
    path: PathBuf,
}

impl LogDirectory {
    /// The log in `path`, which must exist.
    pub fn new(path: impl Into<PathBuf>) -> LogDirectory {
        LogDirectory { path: path.into() }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl LogStorage for LogDirectory {
    fn list(&self) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.path)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        fs::read(self.path.join(name))
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn LogFile>> {
        let mut options = OpenOptions::new();
        options.create(true).truncate(true).write(true);
        // The log holds what the store holds: the owner's only.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(self.path.join(name))?;
        Ok(Box::new(DirectoryFile { file }))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        fs::rename(self.path.join(from), self.path.join(to))
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        fs::remove_file(self.path.join(name))
    }

    fn sync_names(&self) -> io::Result<()> {
        File::open(&self.path)?.sync_all()
    }

    fn describe(&self, name: &str) -> String {
        self.path.join(name).display().to_string()
    }
}

#[derive(Debug)]
struct DirectoryFile {
    file: File,
}

impl LogFile for DirectoryFile {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, offset)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}
