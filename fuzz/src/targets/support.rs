//! What the targets share: a throwaway store (redb in memory, its
//! write-ahead log in memory) so that a run spends its time in Mercato's
//! code rather than in `fsync`.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use mercato_engine::{
    Clock, Durability, EngineConfig, InMemoryBackend, LOG_SEGMENT_BYTES_MIN, LogFile, LogStorage,
};

/// An engine configuration over a fresh in-memory store whose
/// write-ahead log (immediate durability, the default) is in memory too.
/// `data_dir` must exist; the engine keeps nothing in it.
pub(crate) fn memory_config(data_dir: &Path, clock: Arc<dyn Clock>) -> EngineConfig {
    let mut config = EngineConfig::new(data_dir);
    config.durability = Durability::Immediate;
    config.clock = clock;
    config.storage_backend = Some(Arc::new(InMemoryBackend::new()));
    config.log_storage = Some(Arc::new(MemoryLog::default()));
    config.log_segment_bytes = LOG_SEGMENT_BYTES_MIN;
    config.cache_size_bytes = 4 << 20;
    config.queue_max = 1_024;
    config.batch_max = 256;
    config
}

type Files = BTreeMap<String, Arc<Mutex<Vec<u8>>>>;

/// A [`LogStorage`] in memory: every write is durable at once.
#[derive(Debug, Default)]
pub(crate) struct MemoryLog {
    files: Mutex<Files>,
}

impl MemoryLog {
    fn files(&self) -> std::sync::MutexGuard<'_, Files> {
        self.files
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

fn missing(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no log file {name}"))
}

impl LogStorage for MemoryLog {
    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.files().keys().cloned().collect())
    }

    fn read(&self, name: &str) -> io::Result<Vec<u8>> {
        let file = self
            .files()
            .get(name)
            .cloned()
            .ok_or_else(|| missing(name))?;
        let bytes = file.lock().unwrap_or_else(|poison| poison.into_inner());
        Ok(bytes.clone())
    }

    fn create(&self, name: &str) -> io::Result<Box<dyn LogFile>> {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        self.files().insert(name.to_owned(), bytes.clone());
        Ok(Box::new(MemoryFile { bytes }))
    }

    fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        let mut files = self.files();
        let file = files.remove(from).ok_or_else(|| missing(from))?;
        files.insert(to.to_owned(), file);
        Ok(())
    }

    fn remove(&self, name: &str) -> io::Result<()> {
        self.files()
            .remove(name)
            .map(drop)
            .ok_or_else(|| missing(name))
    }

    fn sync_names(&self) -> io::Result<()> {
        Ok(())
    }

    fn describe(&self, name: &str) -> String {
        format!("memory:{name}")
    }
}

#[derive(Debug)]
struct MemoryFile {
    bytes: Arc<Mutex<Vec<u8>>>,
}

impl LogFile for MemoryFile {
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut bytes = self
            .bytes
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let end = start + data.len();
        if bytes.len() < end {
            bytes.resize(end, 0);
        }
        bytes[start..end].copy_from_slice(data);
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        let len = usize::try_from(len).map_err(io::Error::other)?;
        self.bytes
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .resize(len, 0);
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        Ok(())
    }
}
