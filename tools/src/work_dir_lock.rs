//! One `train` per work dir: two processes writing one work dir interleave their logs and
//! overwrite each other's checkpoints and `last_checkpoint`, so `train` holds `train.lock`
//! there for its whole run. The file names the holder; a lock left by a process that is gone
//! (killed, the machine rebooted) is taken over with a warning.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The lock file's name in the work dir.
pub const LOCK_FILE: &str = "train.lock";

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "work dir {dir} is in use by another train process ({holder}); wait for it to end or choose another --work-dir"
    )]
    Busy { dir: PathBuf, holder: String },
    #[error("{path}: cannot create the lock file: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The held lock; dropping it removes the file.
#[derive(Debug)]
pub struct WorkDirLock {
    path: PathBuf,
}

impl WorkDirLock {
    /// Takes the lock of `work_dir` (which must exist).
    pub fn acquire(work_dir: &Path) -> Result<Self, LockError> {
        let path = work_dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    writeln!(file, "pid {} on {}", std::process::id(), host()).map_err(io)?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let holder = holder.trim().to_string();
                    if holder_is_alive(&holder) {
                        return Err(LockError::Busy {
                            dir: work_dir.to_path_buf(),
                            holder,
                        });
                    }
                    tracing::warn!(
                        "{}: left by a train process that is gone ({holder}); taking it over",
                        path.display()
                    );
                    std::fs::remove_file(&path).map_err(io)?;
                }
                Err(e) => return Err(io(e)),
            }
        }
        Err(LockError::Busy {
            dir: work_dir.to_path_buf(),
            holder: "another process took it first".into(),
        })
    }
}

impl Drop for WorkDirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// This machine's name, to tell holders on a shared file system apart.
fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "this machine".into())
}

/// Whether the holder line (`pid N on HOST`) names a live process. A holder on another
/// machine, or a line that cannot be read, counts as alive: only a process of this machine
/// can be seen to be gone.
fn holder_is_alive(holder: &str) -> bool {
    let mut words = holder.split_whitespace();
    let (Some("pid"), Some(pid), Some("on"), Some(on)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return true;
    };
    let Ok(pid) = pid.parse::<u32>() else {
        return true;
    };
    if on != host() {
        return true;
    }
    pid == std::process::id() || process_runs(pid)
}

/// Whether process `pid` of this machine runs: it exists and is not a zombie. A killed train
/// process whose parent is gone too (an MPI job ended by `mpirun`, in a container without an
/// init that reaps orphans) can stay a zombie forever, and must not keep its lock.
fn process_runs(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // `pid (comm) state ...`: comm may hold spaces and parentheses, the state follows
        // the last `)`
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| !matches!(state, "Z" | "X")),
        Err(_) => Path::new(&format!("/proc/{pid}")).exists(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_zombie_holds_no_lock() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(process_runs(pid));
        child.kill().unwrap();
        // killed but not reaped: a zombie, still listed under /proc
        let started = Instant::now();
        while process_runs(pid) && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!process_runs(pid));
        assert!(Path::new(&format!("/proc/{pid}")).exists());
        assert!(!holder_is_alive(&format!("pid {pid} on {}", host())));
        child.wait().unwrap();
        assert!(!process_runs(pid));
    }
}
