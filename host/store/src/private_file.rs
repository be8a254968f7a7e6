//! Files only the daemon may read (the master key, the API secrets),
//! created once even when several daemons start at once on one data
//! directory.

use std::io::Write as _;
use std::path::Path;

/// Creates `path` (mode 0600) holding `contents` unless it already
/// exists; `false` when another process created it first (read theirs).
///
/// The contents are written and synced under a private temporary name in
/// the same directory, then hard-linked into place, which fails if `path`
/// exists: a concurrent reader never sees a half-written file and two
/// creators never both win.
pub fn create_private_file(path: &Path, contents: &[u8]) -> std::io::Result<bool> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{:016x}", rand::random::<u64>()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options
        .open(&tmp)
        .and_then(|mut file| file.write_all(contents).and_then(|()| file.sync_all()));
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, path));
    // The temporary name goes either way.
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}
