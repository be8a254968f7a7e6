//! `type = "file"`: NDJSON appended to `<dir>/<name>.ndjson`, rotated by
//! size and age into `<name>-<UTC time>-<n>.ndjson.gz`.
//!
//! A batch is written and `fsync`ed before the cursor moves. A crash in the
//! middle of a write leaves a partial last line, cut off on the next start
//! (that batch was never acknowledged, so it is written again whole). A
//! crash between rotation and compression leaves a plain rotated file,
//! compressed on the next start.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;

/// An open file sink. Blocking: the delivery task calls it through
/// `spawn_blocking`.
#[derive(Debug)]
pub(crate) struct FileSink {
    dir: PathBuf,
    name: String,
    rotate_bytes: u64,
    rotate_after: Duration,
    current: Option<Current>,
    rotated: u64,
}

#[derive(Debug)]
struct Current {
    file: File,
    size: u64,
    opened: Instant,
}

impl FileSink {
    /// Prepares the directory, repairs what a crash left behind.
    pub(crate) fn open(
        dir: &Path,
        name: &str,
        rotate_bytes: u64,
        rotate_secs: u64,
    ) -> std::io::Result<FileSink> {
        std::fs::create_dir_all(dir)?;
        let mut sink = FileSink {
            dir: dir.to_path_buf(),
            name: name.to_owned(),
            rotate_bytes,
            rotate_after: Duration::from_secs(rotate_secs),
            current: None,
            rotated: 0,
        };
        sink.compress_leftovers()?;
        sink.cut_partial_line()?;
        Ok(sink)
    }

    fn current_path(&self) -> PathBuf {
        self.dir.join(format!("{}.ndjson", self.name))
    }

    /// Appends `lines` (one JSON object each, without newline) and syncs.
    pub(crate) fn write(&mut self, lines: &[Vec<u8>]) -> std::io::Result<()> {
        self.rotate_if_due()?;
        let current = match &mut self.current {
            Some(c) => c,
            None => {
                let file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(self.current_path())?;
                let size = file.metadata()?.len();
                self.current.insert(Current {
                    file,
                    size,
                    opened: Instant::now(),
                })
            }
        };
        let mut out = BufWriter::new(&current.file);
        let mut written = 0u64;
        for line in lines {
            out.write_all(line)?;
            out.write_all(b"\n")?;
            written += line.len() as u64 + 1;
        }
        out.flush()?;
        drop(out);
        current.file.sync_data()?;
        current.size += written;
        Ok(())
    }

    /// Rotates when the current file is due by size or age (also called
    /// while idle, so a quiet sink still closes its file on time).
    pub(crate) fn rotate_if_due(&mut self) -> std::io::Result<()> {
        let due = match &self.current {
            Some(c) => {
                c.size > 0
                    && (c.size >= self.rotate_bytes || c.opened.elapsed() >= self.rotate_after)
            }
            None => false,
        };
        if !due {
            return Ok(());
        }
        self.current = None;
        let stamp = time::OffsetDateTime::now_utc()
            .format(&time::macros::format_description!(
                "[year][month][day]T[hour][minute][second]Z"
            ))
            .unwrap_or_default();
        self.rotated += 1;
        let closed = self
            .dir
            .join(format!("{}-{stamp}-{}.ndjson", self.name, self.rotated));
        std::fs::rename(self.current_path(), &closed)?;
        compress(&closed)
    }

    fn compress_leftovers(&mut self) -> std::io::Result<()> {
        let prefix = format!("{}-", self.name);
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let Some(file) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if file.starts_with(&prefix) && file.ends_with(".ndjson") {
                compress(&path)?;
            }
        }
        Ok(())
    }

    fn cut_partial_line(&self) -> std::io::Result<()> {
        let path = self.current_path();
        let mut file = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        // Scan back from the end for the last newline.
        let mut end = len;
        let mut buf = [0u8; 4096];
        while end > 0 {
            let start = end.saturating_sub(buf.len() as u64);
            let n = usize::try_from(end - start).unwrap_or(0);
            file.seek(SeekFrom::Start(start))?;
            let chunk = buf.get_mut(..n).unwrap_or_default();
            file.read_exact(chunk)?;
            if let Some(i) = chunk.iter().rposition(|b| *b == b'\n') {
                let keep = start + i as u64 + 1;
                if keep < len {
                    tracing::warn!(file = %path.display(), cut = len - keep, "cutting a partial last line left by a crash (its batch is written again)");
                    file.set_len(keep)?;
                    file.sync_data()?;
                }
                return Ok(());
            }
            end = start;
        }
        if len > 0 {
            file.set_len(0)?;
            file.sync_data()?;
        }
        Ok(())
    }
}

/// Gzips `path` into `path.gz` and removes `path`.
fn compress(path: &Path) -> std::io::Result<()> {
    let mut gz_name = path.as_os_str().to_owned();
    gz_name.push(".gz");
    let gz_path = PathBuf::from(gz_name);
    let tmp = gz_path.with_extension("gz.partial");
    let mut input = BufReader::new(File::open(path)?);
    let out = File::create(&tmp)?;
    let mut encoder = GzEncoder::new(BufWriter::new(out), Compression::default());
    std::io::copy(&mut input, &mut encoder)?;
    let out = encoder.finish()?;
    let out = out.into_inner().map_err(|e| e.into_error())?;
    out.sync_all()?;
    std::fs::rename(&tmp, &gz_path)?;
    std::fs::remove_file(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn partial_last_line_is_cut_on_open() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.ndjson"), b"{\"a\":1}\n{\"b\":").unwrap();
        let mut sink = FileSink::open(dir.path(), "s", 4096, 3600).unwrap();
        sink.write(&[b"{\"c\":3}".to_vec()]).unwrap();
        let text = std::fs::read_to_string(dir.path().join("s.ndjson")).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"c\":3}\n");
    }

    #[test]
    fn rotated_files_are_gzipped_and_complete() {
        let dir = tempfile::tempdir().unwrap();
        let mut sink = FileSink::open(dir.path(), "s", 4096, 3600).unwrap();
        let line = vec![b'x'; 1000];
        for _ in 0..10 {
            sink.write(std::slice::from_ref(&line)).unwrap();
        }
        let mut gz = 0;
        let mut lines = 0;
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let text = if name.ends_with(".gz") {
                gz += 1;
                let mut s = String::new();
                flate2::read::GzDecoder::new(File::open(&path).unwrap())
                    .read_to_string(&mut s)
                    .unwrap();
                s
            } else {
                assert_eq!(name, "s.ndjson");
                std::fs::read_to_string(&path).unwrap()
            };
            lines += text.lines().count();
        }
        assert_eq!(lines, 10);
        // Five lines of 1,001 bytes pass 4,096: the sixth write rotates.
        assert_eq!(gz, 1);
    }
}
