//! Filesystem primitives for writing config files safely — atomic replace, symlink following,
//! advisory locking, one-time backups — and [`install`], which puts hop's generated ssh config
//! in place and hooks it into the user's `~/.ssh/config`.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::domain::ssh_config::{self, Merge};

/// Mode of every file hop writes (DESIGN §6); OpenSSH refuses group/world-writable configs.
pub const FILE_MODE: u32 = 0o600;
/// Mode of directories hop creates (`~/.ssh`, `~/.ssh/hop`).
pub const DIR_MODE: u32 = 0o700;
/// Name of the lock file, in the directory of hop's file (see [`install`]).
pub const LOCK_FILE_NAME: &str = ".hop.lock";
/// Appended to the user config's path for the one-time backup.
pub const BACKUP_SUFFIX: &str = ".hop-backup";
/// How long [`install`] keeps starting over while another program keeps changing the user's
/// config or holds it open for writing; then it gives up with [`InstallError::Contended`].
pub const CONTENTION_BUDGET: Duration = Duration::from_secs(3);
/// Longest pause between two attempts; pauses double from 1 ms up to this.
const MAX_BACKOFF: Duration = Duration::from_millis(200);

/// Linux gives up after 40 links (MAXSYMLINKS); so do we.
const MAX_SYMLINKS: usize = 40;
/// Marks hop's temporary files: `.<name>.hop-tmp-<pid>-<n>`.
const TEMP_MARK: &str = ".hop-tmp-";

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Follows `path` through any chain of symlinks (absolute or relative targets) to the file that
/// would really be written. The final target need not exist: a dangling link to a dotfiles repo
/// still names where the file belongs. Only the last component is resolved; symlinked
/// directories above it are fine for `rename`, which needs the real file's directory only to
/// stay on one filesystem.
pub fn resolve_symlinks(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_SYMLINKS {
        let meta = match fs::symlink_metadata(&current) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(current),
            Err(e) => return Err(e),
        };
        if !meta.file_type().is_symlink() {
            return Ok(current);
        }
        let target = fs::read_link(&current)?;
        // A relative target is relative to the link's directory, not to our cwd.
        current = match current.parent() {
            Some(dir) if target.is_relative() => dir.join(target),
            _ => target,
        };
    }
    Err(io::Error::other(format!("too many levels of symbolic links at {}", path.display())))
}

/// A complete, fsynced file next to its destination, not yet visible there. Dropping it
/// without committing removes it, so every early return cleans up.
#[derive(Debug)]
pub struct StagedFile {
    temp: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl StagedFile {
    /// The temporary file, e.g. for `ssh -G -F` to check before it goes live.
    pub fn path(&self) -> &Path {
        &self.temp
    }

    /// Renames the file over its target (atomic: readers see the old or the new file, never
    /// a mix) and fsyncs the directory so the rename survives a crash.
    pub fn commit(mut self) -> io::Result<()> {
        fs::rename(&self.temp, &self.target)?;
        self.committed = true;
        sync_dir(parent_dir(&self.target))
    }

    /// Like [`commit`](Self::commit) but never replaces a file: fails with `AlreadyExists` if
    /// the target appeared meanwhile. Uses `link(2)`, which is atomic and refuses to clobber.
    pub fn commit_new(mut self) -> io::Result<()> {
        match fs::hard_link(&self.temp, &self.target) {
            Ok(()) => {
                // The target now holds the data; a leftover temp name would be harmless but
                // untidy, so a failure to remove it is not an error.
                let _ = fs::remove_file(&self.temp);
                self.committed = true;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(e),
            // Filesystems without hard links (some FUSE, vfat): check-then-rename, racy only
            // against a writer creating the file in the same microseconds.
            Err(_) => {
                if fs::symlink_metadata(&self.target).is_ok() {
                    return Err(io::Error::new(io::ErrorKind::AlreadyExists, "file appeared while hop was writing it"));
                }
                fs::rename(&self.temp, &self.target)?;
                self.committed = true;
            }
        }
        sync_dir(parent_dir(&self.target))
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// Writes `bytes` to a new temporary file in `target`'s directory (a rename across
/// filesystems would not be atomic), with `mode`, fsynced. `target` is used as given: resolve
/// symlinks first. When `target` exists, its owner is kept where permitted (hop run with sudo
/// must not hand the user's config to root, or OpenSSH rejects it as "bad owner").
pub fn stage(target: &Path, bytes: &[u8], mode: u32) -> io::Result<StagedFile> {
    let dir = parent_dir(target);
    let name =
        target.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let owner = fs::metadata(target).ok().map(|m| (m.uid(), m.gid()));
    let mut tries = 0;
    loop {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!("{TEMP_MARK}{}-{n}", std::process::id()));
        let temp = dir.join(temp_name);
        let mut file = match OpenOptions::new().write(true).create_new(true).mode(mode).open(&temp) {
            Ok(file) => file,
            // A stale temp from a crashed run with a recycled pid: pick the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < 100 => {
                tries += 1;
                continue;
            }
            Err(e) => return Err(e),
        };
        let staged = StagedFile { temp, target: target.to_path_buf(), committed: false };
        file.write_all(bytes)?;
        // The umask narrowed the mode given to open(2); set it exactly.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        if let Some((uid, gid)) = owner {
            let meta = file.metadata()?;
            if (meta.uid(), meta.gid()) != (uid, gid) {
                // Only root may give a file away; otherwise keep ours.
                let _ = std::os::unix::fs::fchown(&file, Some(uid), Some(gid));
            }
        }
        file.sync_all()?;
        return Ok(staged);
    }
}

/// Writes `bytes` to `path` atomically: temp file in the same directory (unique name), write,
/// fsync, set mode, rename over path, fsync the directory. If `path` is a symlink (e.g.
/// dotfiles), writes to the symlink's final target and keeps the link.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let target = resolve_symlinks(path)?;
    stage(&target, bytes, mode)?.commit()
}

/// An exclusive advisory lock, held until drop.
#[derive(Debug)]
pub struct LockGuard {
    file: File,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Closing the file would release it too; unlocking first makes the intent explicit.
        let _ = self.file.unlock();
    }
}

/// Takes an exclusive `flock` on `lock_path` (created 0600 if missing), waiting for other
/// holders. The lock file is never deleted: removing it would let two processes lock two
/// different inodes under the same name.
pub fn lock_exclusive(lock_path: &Path) -> io::Result<LockGuard> {
    // Opened for writing: over NFS, flock is emulated with fcntl locks, which need a
    // writable descriptor for an exclusive lock.
    let file =
        OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(FILE_MODE).open(lock_path)?;
    file.lock()?;
    Ok(LockGuard { file })
}

/// Copies `path` to `backup` only if `backup` does not exist yet; mode 0600; returns whether it
/// copied. The copy is written completely before it appears under `backup`, so a crash never
/// leaves a truncated backup that would then be kept forever.
#[cfg(test)]
pub fn backup_once(path: &Path, backup: &Path) -> io::Result<bool> {
    if fs::symlink_metadata(backup).is_ok() {
        return Ok(false);
    }
    let bytes = fs::read(path)?;
    backup_bytes_once(&bytes, backup)
}

fn backup_bytes_once(bytes: &[u8], backup: &Path) -> io::Result<bool> {
    if fs::symlink_metadata(backup).is_ok() {
        return Ok(false);
    }
    match stage(backup, bytes, FILE_MODE)?.commit_new() {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// What `hop config --write` asks for.
pub struct InstallRequest<'a> {
    /// e.g. `~/.ssh/config` (may not exist, may be a symlink).
    pub user_config: &'a Path,
    /// e.g. `~/.ssh/hop/config` (hop owns it). Absolute: it is written into an `Include` line.
    pub hop_file: &'a Path,
    /// Rendered stanzas.
    pub hop_text: &'a str,
    /// `$HOME`: an existing `Include ~/.ssh/hop/config` or `Include hop/config` (relative to
    /// `~/.ssh`) is recognised against it, as OpenSSH reads those.
    pub home: &'a Path,
    /// Extra validation of a candidate file (the caller runs `ssh -G -F candidate host`);
    /// called for the candidate hop file and for the candidate user config. `Err` carries the
    /// reason shown to the user.
    pub validate: &'a dyn Fn(&Path) -> Result<(), String>,
}

/// What [`install`] changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallOutcome {
    pub hop_file_changed: bool,
    pub user_config_changed: bool,
    /// The backup made by this run (only the first change to a user config makes one).
    pub backup: Option<PathBuf>,
}

/// Why [`install`] failed. Nothing was changed on disk, with one exception: when another
/// program's write forced a further round after hop had already replaced the user config
/// (`Contended`, or an I/O error in that round), that replacement stays — it is complete,
/// validated and keeps the other program's bytes.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{action} {}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{} line {line}: {message}", path.display())]
    Invalid { path: PathBuf, line: usize, message: String },
    #[error("{} was rejected: {message}", path.display())]
    Rejected { path: PathBuf, message: String },
    #[error("{} is not valid utf-8, so it cannot be named in an include line", path.display())]
    NonUtf8Path { path: PathBuf },
    #[error(
        "refusing to write {}: adding the include line would change other bytes (a bug in hop)",
        path.display()
    )]
    Merge { path: PathBuf },
    /// Another program kept writing the user's config. Some of hop's attempts may have been
    /// written (each one complete and valid); running again finishes the job.
    #[error(
        "{} kept changing, or stayed open for writing in another program, while hop was updating it ({attempts} attempts in {} s); try again",
        path.display(),
        CONTENTION_BUDGET.as_secs()
    )]
    Contended { path: PathBuf, attempts: u32 },
}

fn io_error(path: &Path, action: &'static str) -> impl FnOnce(io::Error) -> InstallError {
    let path = path.to_path_buf();
    move |source| InstallError::Io { path, action, source }
}

/// Installs hop's config: writes `hop_file` and makes sure `user_config` includes it at top
/// level (see [`ssh_config::merge_include`]).
///
/// Order, so that a failure at any step leaves both files as they were (temp files removed):
/// 1. create `hop_file`'s directory (and `user_config`'s, i.e. `~/.ssh`) 0700 if missing;
/// 2. lock `<hop dir>/.hop.lock`. hop's own directory because it serializes every hop
///    writing this hop file and keeps lock files out of `~/.ssh` and out of the dotfiles repo
///    `~/.ssh/config` may link into. Writers it cannot exclude — editors, scripts, or a hop
///    run with a `--file` in another directory — are caught by the checks of step 5;
/// 3. check `hop_text` with [`ssh_config::parse`], stage it, `validate` it — skipped entirely
///    when the file already holds exactly this text (mtime untouched);
/// 4. read the user config (missing = empty) and commit the hop file, so that validating the
///    user config below sees the new hosts; any later failure puts the old hop file back;
/// 5. merge the include line; when that changes the file: check the round trip, parse, stage
///    next to the real (symlink-resolved) file, `validate`, re-read the file and start over
///    if another program changed it meanwhile or has it open for writing (Linux, local
///    filesystems: asked with a read lease), back up the original to
///    `<user_config>.hop-backup` once, rename into place, wait (bounded) until nobody has the
///    replaced file open for writing, then re-read it through the descriptor we kept: a
///    writer that opened it just before our rename would otherwise be lost, so what it
///    appended (or rewrote in place) goes into another round. Rounds go on for up to
///    [`CONTENTION_BUDGET`], pausing 1, 2, 4… ms (up to 200) between.
///
/// What no check can catch: a writer whose open(2) had found the old file before the rename
/// but registers as a writer only after hop's last look (a window inside one system call);
/// where leases are unavailable or not to be believed (network filesystems), any writer
/// that opened the old file before the rename and writes after the last look — as with
/// every program that replaces files by rename (editors, `sed -i`). And an editor saving a
/// buffer loaded before hop ran drops hop's line; the next run adds it back.
pub fn install(req: &InstallRequest) -> Result<InstallOutcome, InstallError> {
    let hop_dir = parent_dir(req.hop_file);
    create_private_dir(parent_dir(req.user_config))?;
    create_private_dir(hop_dir)?;
    let lock_path = hop_dir.join(LOCK_FILE_NAME);
    let _lock = lock_exclusive(&lock_path).map_err(io_error(&lock_path, "cannot lock"))?;

    let hop_str =
        req.hop_file.to_str().ok_or_else(|| InstallError::NonUtf8Path { path: req.hop_file.to_path_buf() })?;
    ssh_config::parse(req.hop_text).map_err(|e| InstallError::Invalid {
        path: req.hop_file.to_path_buf(),
        line: e.line,
        message: e.message,
    })?;
    let hop_target = resolve_symlinks(req.hop_file).map_err(io_error(req.hop_file, "cannot resolve symlinks of"))?;
    let hop_old = read_optional(&hop_target).map_err(io_error(&hop_target, "cannot read"))?;
    let hop_staged = if hop_old.as_deref() == Some(req.hop_text.as_bytes()) {
        tighten_mode(&hop_target).map_err(io_error(&hop_target, "cannot set mode of"))?;
        None
    } else {
        let staged =
            stage(&hop_target, req.hop_text.as_bytes(), FILE_MODE).map_err(io_error(&hop_target, "cannot write"))?;
        validate(req, &staged, req.hop_file)?;
        Some(staged)
    };

    // Fail on an unreadable user config before anything is replaced.
    let user_target =
        resolve_symlinks(req.user_config).map_err(io_error(req.user_config, "cannot resolve symlinks of"))?;
    Snapshot::take(&user_target).map_err(io_error(&user_target, "cannot read"))?;

    let hop_file_changed = hop_staged.is_some();
    if let Some(staged) = hop_staged {
        staged.commit().map_err(io_error(&hop_target, "cannot rename into"))?;
    }
    let mut user = UserUpdate::default();
    match update_user_config(req, hop_str, &mut user) {
        Ok(()) => Ok(InstallOutcome { hop_file_changed, user_config_changed: user.written, backup: user.backup }),
        Err(e) => {
            // Once the user config includes the new hop file, keep it: going back would
            // leave the include pointing at stale hosts for no gain.
            if hop_file_changed && !user.written {
                restore(&hop_target, hop_old.as_deref());
            }
            Err(e)
        }
    }
}

/// Runs the caller's check on a candidate. `ssh -G` names the file it read, i.e. our temp
/// file; the user knows the file by its real name.
fn validate(req: &InstallRequest, staged: &StagedFile, shown: &Path) -> Result<(), InstallError> {
    (req.validate)(staged.path()).map_err(|message| InstallError::Rejected {
        path: shown.to_path_buf(),
        message: message.replace(&*staged.path().to_string_lossy(), &shown.display().to_string()),
    })
}

/// Progress of step 5 of [`install`], kept across retries and reported even on failure.
#[derive(Default)]
struct UserUpdate {
    written: bool,
    backup: Option<PathBuf>,
}

/// Bytes that belong in the user config but are not on disk, because another program wrote
/// them into the file hop had just replaced.
enum Pending {
    Nothing,
    /// Appended to the replaced file: append them to the current one.
    Append(Vec<u8>),
    /// The replaced file was rewritten in place with `content`; `ours` is what hop had
    /// written, so anything after it in the current file was appended since.
    Rewrite {
        content: Vec<u8>,
        ours: Vec<u8>,
    },
}

impl Pending {
    fn base(&self, disk: &[u8]) -> Vec<u8> {
        match self {
            Pending::Nothing => disk.to_vec(),
            Pending::Append(extra) => [disk, extra].concat(),
            Pending::Rewrite { content, ours } => match disk.strip_prefix(ours.as_slice()) {
                Some(appended) => [content.as_slice(), appended].concat(),
                // Replaced wholesale after us: that writer saw our version and has the
                // last word.
                None => disk.to_vec(),
            },
        }
    }
}

fn update_user_config(req: &InstallRequest, hop_str: &str, progress: &mut UserUpdate) -> Result<(), InstallError> {
    let user_config = req.user_config;
    let backup_path = {
        let mut p = user_config.as_os_str().to_owned();
        p.push(BACKUP_SUFFIX);
        PathBuf::from(p)
    };
    let mut pending = Pending::Nothing;
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        if attempts > 0 {
            if started.elapsed() >= CONTENTION_BUDGET {
                return Err(InstallError::Contended { path: user_config.to_path_buf(), attempts });
            }
            // Someone is writing right now: starting over at once would most likely collide
            // with the same burst again.
            std::thread::sleep(backoff(attempts - 1));
        }
        attempts += 1;
        let target = resolve_symlinks(user_config).map_err(io_error(user_config, "cannot resolve symlinks of"))?;
        let mut snapshot = Snapshot::take(&target).map_err(io_error(&target, "cannot read"))?;
        let base = pending.base(&snapshot.bytes);
        let new = match ssh_config::merge_include(&base, hop_str, &req.home.to_string_lossy()) {
            Merge::Unchanged => base,
            Merge::Changed(merged) => {
                // Independent check that the merge only added our line.
                if ssh_config::strip_inserted(&merged, hop_str, base.len()).as_deref() != Some(base.as_slice()) {
                    return Err(InstallError::Merge { path: user_config.to_path_buf() });
                }
                merged
            }
        };
        if new == snapshot.bytes {
            return Ok(());
        }
        ssh_config::parse_bytes(&new).map_err(|e| InstallError::Invalid {
            path: user_config.to_path_buf(),
            line: e.line,
            message: e.message,
        })?;
        let staged = stage(&target, &new, FILE_MODE).map_err(io_error(&target, "cannot write"))?;
        validate(req, &staged, user_config)?;

        // Last look before replacing: has anyone written since we read, or is anyone about
        // to (the file open for writing, like `echo … >>` between its open and its write)?
        let leases = leases::trustworthy(staged.path());
        if !snapshot.is_current(user_config).map_err(io_error(&target, "cannot read"))? || snapshot.has_writers(leases)
        {
            continue;
        }
        test_hook::before_rename();
        if snapshot.file.is_some() {
            if progress.backup.is_none()
                && !progress.written
                && backup_bytes_once(&snapshot.bytes, &backup_path)
                    .map_err(io_error(&backup_path, "cannot back up to"))?
            {
                progress.backup = Some(backup_path.clone());
            }
            staged.commit().map_err(io_error(&target, "cannot rename into"))?;
        } else {
            match staged.commit_new() {
                Ok(()) => {}
                // Created by someone else since we looked: merge into theirs.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_error(&target, "cannot create")(e)),
            }
        }
        progress.written = true;
        test_hook::after_rename();

        // A writer that opened the old file before our rename may have written to it since,
        // or may still be about to: wait (bounded) until nobody has it open for writing.
        let waiting = Instant::now();
        let mut pauses = 0;
        while snapshot.has_writers(leases) && waiting.elapsed() < CONTENTION_BUDGET {
            std::thread::sleep(backoff(pauses));
            pauses += 1;
        }
        match snapshot.reread().map_err(io_error(&target, "cannot read"))? {
            None => return Ok(()),
            Some(after) => {
                pending = match after.strip_prefix(snapshot.bytes.as_slice()) {
                    Some(appended) => Pending::Append(appended.to_vec()),
                    None => Pending::Rewrite { content: after, ours: new },
                };
            }
        }
    }
}

/// The pause after the `n`th consecutive collision: 1, 2, 4… ms, at most [`MAX_BACKOFF`].
fn backoff(n: u32) -> Duration {
    MAX_BACKOFF.min(Duration::from_millis(1 << n.min(16)))
}

/// Lets a test act as a concurrent writer at an exact point of [`update_user_config`]: the
/// windows around hop's rename are too short to hit on purpose otherwise.
#[cfg(test)]
mod test_hook {
    use std::cell::RefCell;

    type Hook = RefCell<Option<Box<dyn FnMut()>>>;

    thread_local! {
        static BEFORE_RENAME: Hook = RefCell::new(None);
        static AFTER_RENAME: Hook = RefCell::new(None);
    }

    /// Runs `hook` once, right after hop's last look at the user config, before it renames.
    #[must_use]
    pub fn set_before_rename(hook: impl FnMut() + 'static) -> Guard {
        BEFORE_RENAME.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
        Guard(&BEFORE_RENAME)
    }

    /// Runs `hook` once, right after hop's rename, before it looks at the replaced file again.
    #[must_use]
    pub fn set_after_rename(hook: impl FnMut() + 'static) -> Guard {
        AFTER_RENAME.with(|h| *h.borrow_mut() = Some(Box::new(hook)));
        Guard(&AFTER_RENAME)
    }

    /// Removes the hook (for this thread) when dropped.
    pub struct Guard(&'static std::thread::LocalKey<Hook>);

    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.with(|h| *h.borrow_mut() = None);
        }
    }

    /// Hooks are one-shot: a writer acting in every round would keep hop busy for good.
    fn call(slot: &'static std::thread::LocalKey<Hook>) {
        if let Some(mut hook) = slot.with(|h| h.borrow_mut().take()) {
            hook();
        }
    }

    pub fn before_rename() {
        call(&BEFORE_RENAME);
    }

    pub fn after_rename() {
        call(&AFTER_RENAME);
    }
}

#[cfg(not(test))]
mod test_hook {
    pub fn before_rename() {}
    pub fn after_rename() {}
}

/// The user config as read, with the descriptor kept open so that the same inode can be
/// re-read after it has been replaced.
struct Snapshot {
    file: Option<File>,
    bytes: Vec<u8>,
}

impl Snapshot {
    fn take(path: &Path) -> io::Result<Snapshot> {
        match File::open(path) {
            Ok(mut file) => {
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes)?;
                Ok(Snapshot { file: Some(file), bytes })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Snapshot { file: None, bytes: Vec::new() }),
            Err(e) => Err(e),
        }
    }

    /// Whether `path` still leads to the same file with the same content: no symlink
    /// re-pointed, no editor's rename, no in-place write.
    fn is_current(&self, path: &Path) -> io::Result<bool> {
        let target = resolve_symlinks(path)?;
        let now = Snapshot::take(&target)?;
        Ok(match (&self.file, &now.file) {
            (None, None) => true,
            (Some(old), Some(new)) => {
                let (a, b) = (old.metadata()?, new.metadata()?);
                (a.dev(), a.ino()) == (b.dev(), b.ino()) && now.bytes == self.bytes
            }
            _ => false,
        })
    }

    /// Whether another program (or this one) has the file open for writing, when `leases`
    /// says the kernel can tell (see [`leases::trustworthy`]).
    fn has_writers(&self, leases: bool) -> bool {
        leases && self.file.as_ref().and_then(leases::open_for_writing) == Some(true)
    }

    /// The old file's content now, if it changed since it was read.
    fn reread(&mut self) -> io::Result<Option<Vec<u8>>> {
        let Some(file) = self.file.as_mut() else {
            return Ok(None);
        };
        file.seek(SeekFrom::Start(0))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok((bytes != self.bytes).then_some(bytes))
    }
}

/// Asking Linux whether a file is open for writing, through read leases.
mod leases {
    use std::fs::File;
    use std::path::Path;

    /// Whether any process (this one included) has `file` open for writing; `None` when the
    /// kernel will not say (not Linux, leases disabled, a file owned by another user). Asked
    /// by trying to take a read lease, which Linux refuses with `EAGAIN` exactly when the inode
    /// is open for writing — on local filesystems; see [`trustworthy`]. A lease taken is dropped
    /// at once. A writer opening the file in the microseconds we hold it breaks the lease and
    /// the kernel signals us: the signal is set to SIGURG, ignored by default, not SIGIO, which
    /// would kill hop.
    #[cfg(target_os = "linux")]
    pub fn open_for_writing(file: &File) -> Option<bool> {
        use std::os::fd::AsRawFd;
        // <asm-generic/fcntl.h>; the libc crate does not export it for every target.
        const F_SETSIG: libc::c_int = 10;
        let fd = file.as_raw_fd();
        // SAFETY: fcntl on a descriptor we own, with integer arguments only.
        unsafe {
            if libc::fcntl(fd, F_SETSIG, libc::SIGURG) != 0 {
                return None;
            }
            if libc::fcntl(fd, libc::F_SETLEASE, libc::F_RDLCK) == 0 {
                libc::fcntl(fd, libc::F_SETLEASE, libc::F_UNLCK);
                return Some(false);
            }
        }
        (std::io::Error::last_os_error().raw_os_error() == Some(libc::EAGAIN)).then_some(true)
    }

    #[cfg(not(target_os = "linux"))]
    pub fn open_for_writing(_: &File) -> Option<bool> {
        None
    }

    /// Whether [`open_for_writing`] can be believed for files next to `fresh`, a file hop
    /// has just written and closed, so that nobody has it open for writing. Network
    /// filesystems answer for the server's delegations, not for local opens (NFSv4 refuses
    /// every lease it holds no delegation for): never believed. Elsewhere, `fresh` calibrates:
    /// a lease on it must be granted.
    pub fn trustworthy(fresh: &Path) -> bool {
        let Ok(file) = File::open(fresh) else {
            return false;
        };
        !on_network_filesystem(&file) && open_for_writing(&file) == Some(false)
    }

    #[cfg(target_os = "linux")]
    fn on_network_filesystem(file: &File) -> bool {
        use std::os::fd::AsRawFd;
        // SAFETY: fstatfs fills the zeroed struct we pass; the descriptor is ours.
        let mut st: libc::statfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstatfs(file.as_raw_fd(), &mut st) } != 0 {
            return true;
        }
        #[allow(clippy::unnecessary_cast)] // f_type's width differs between targets
        is_network_magic(st.f_type as i64)
    }

    #[cfg(not(target_os = "linux"))]
    fn on_network_filesystem(_: &File) -> bool {
        true
    }

    /// Filesystem magic numbers (statfs(2)) of network and cluster filesystems, whose leases
    /// do not track this machine's writers.
    pub fn is_network_magic(magic: i64) -> bool {
        const NETWORK: [i64; 12] = [
            0x6969,     // NFS
            0x517B,     // SMB
            0xFF534D42, // CIFS
            0xFE534D42, // SMB2
            0x00C36400, // Ceph
            0x01021997, // 9p
            0x5346414F, // AFS
            0x6B414653, // kAFS
            0x73757245, // Coda
            0x7461636F, // OCFS2
            0x01161970, // GFS2
            0x0BD00BD0, // Lustre
        ];
        NETWORK.contains(&(magic & 0xFFFF_FFFF))
    }
}

/// Best effort: put the hop file back as it was after a later step failed. The error being
/// reported matters more than a failure here.
fn restore(target: &Path, old: Option<&[u8]>) {
    let _ = match old {
        Some(bytes) => write_atomic(target, bytes, FILE_MODE),
        None => fs::remove_file(target),
    };
}

/// `mkdir -p` with 0700 for the directories it creates; existing ones keep their mode (a
/// user's `~/.ssh` is theirs to configure).
fn create_private_dir(dir: &Path) -> Result<(), InstallError> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir).map_err(io_error(dir, "cannot create directory"))
}

/// Whether `ssh` can put control sockets in `dir`: it must exist (OpenSSH does not create it, and
/// a master that cannot bind its socket exits with an error), be a directory of this user's,
/// not a symlink, and be private (0700). With `create`, it is made (and made 0700) if needed;
/// without, it is only checked, so `hop config` without `--write` never names a directory that
/// is not there.
pub fn private_dir(dir: &Path, create: bool) -> Result<(), String> {
    if create {
        match DirBuilder::new().recursive(true).mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) => return Err(format!("cannot create it: {e}")),
        }
    }
    let meta = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err("not created yet (hop config --write does)".into());
        }
        Err(e) => return Err(e.to_string()),
    };
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != me {
        return Err("not a directory of this user's".into());
    }
    if meta.mode() & 0o077 != 0 {
        if !create {
            return Err("open to other users (hop config --write makes it 0700)".into());
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| format!("cannot make it 0700: {e}"))?;
    }
    Ok(())
}

/// hop owns its file: if someone loosened its mode, OpenSSH would reject the include.
fn tighten_mode(path: &Path) -> io::Result<()> {
    let mode = fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(FILE_MODE))?;
    }
    Ok(())
}

fn read_optional(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::os::unix::fs::symlink;
    use std::rc::Rc;
    use std::sync::{Arc, Barrier};
    use std::time::SystemTime;

    #[test]
    fn control_socket_directory_is_made_private_and_checked() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("hop/cm");
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().mode() & 0o777;
        assert_eq!(private_dir(&dir, false), Err("not created yet (hop config --write does)".into()));
        assert!(!dir.exists(), "checking makes nothing");
        private_dir(&dir, true).unwrap();
        assert_eq!((mode(&dir), mode(dir.parent().unwrap())), (0o700, 0o700));
        private_dir(&dir, false).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(private_dir(&dir, false), Err("open to other users (hop config --write makes it 0700)".into()));
        private_dir(&dir, true).unwrap();
        assert_eq!(mode(&dir), 0o700, "made private again");
        // A symlink (to a directory elsewhere) or a file is not hop's directory.
        let link = tmp.path().join("link");
        symlink(&dir, &link).unwrap();
        assert_eq!(private_dir(&link, true), Err("not a directory of this user's".into()));
        let file = tmp.path().join("file");
        fs::write(&file, b"").unwrap();
        assert!(private_dir(&file, true).unwrap_err().starts_with("cannot create it: "));
    }

    struct Home {
        _dir: tempfile::TempDir,
        root: PathBuf,
        ssh: PathBuf,
        user_config: PathBuf,
        hop_file: PathBuf,
    }

    fn home() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let ssh = root.join(".ssh");
        Home { user_config: ssh.join("config"), hop_file: ssh.join("hop").join("config"), ssh, root, _dir: dir }
    }

    const HOP_TEXT: &str = "# Generated by hop.\n\nHost web\n  HostName 10.0.1.10\n";

    fn accept(_: &Path) -> Result<(), String> {
        Ok(())
    }

    fn run(h: &Home, text: &str) -> Result<InstallOutcome, InstallError> {
        install(&InstallRequest {
            user_config: &h.user_config,
            hop_file: &h.hop_file,
            hop_text: text,
            home: &h.root,
            validate: &accept,
        })
    }

    fn include(h: &Home) -> String {
        ssh_config::include_line(h.hop_file.to_str().unwrap())
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    /// Every file under `dir`, recursively, with its content: to show "nothing changed".
    fn tree(dir: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
        let mut out = Vec::new();
        let Ok(entries) = fs::read_dir(dir) else {
            return out;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                out.push((path.clone(), None));
                out.extend(tree(&path));
            } else {
                out.push((path.clone(), fs::read(&path).ok()));
            }
        }
        out.sort();
        out
    }

    fn temp_files(dir: &Path) -> Vec<PathBuf> {
        tree(dir).into_iter().map(|(p, _)| p).filter(|p| p.to_string_lossy().contains(TEMP_MARK)).collect()
    }

    fn stamp(path: &Path) -> (u64, SystemTime) {
        let meta = fs::metadata(path).unwrap();
        (meta.ino(), meta.modified().unwrap())
    }

    #[test]
    fn write_atomic_replaces_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"new", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(mode(&path), 0o600);
        write_atomic(&dir.path().join("fresh"), b"x", 0o600).unwrap();
        assert_eq!(mode(&dir.path().join("fresh")), 0o600);
        assert!(temp_files(dir.path()).is_empty());
    }

    #[test]
    fn write_atomic_follows_symlink_chain() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("dotfiles")).unwrap();
        let real = dir.path().join("dotfiles/ssh_config");
        fs::write(&real, "old").unwrap();
        symlink("dotfiles/ssh_config", dir.path().join("mid")).unwrap();
        symlink(dir.path().join("mid"), dir.path().join("link")).unwrap();
        write_atomic(&dir.path().join("link"), b"new", 0o600).unwrap();
        assert!(fs::symlink_metadata(dir.path().join("link")).unwrap().is_symlink());
        assert!(fs::symlink_metadata(dir.path().join("mid")).unwrap().is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"new");
    }

    #[test]
    fn resolve_symlinks_cases() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(resolve_symlinks(&d.join("none")).unwrap(), d.join("none"));
        symlink("sub/../target", d.join("rel")).unwrap();
        assert_eq!(resolve_symlinks(&d.join("rel")).unwrap(), d.join("sub/../target"));
        symlink(d.join("missing"), d.join("dangling")).unwrap();
        assert_eq!(resolve_symlinks(&d.join("dangling")).unwrap(), d.join("missing"));
        symlink("loop2", d.join("loop1")).unwrap();
        symlink("loop1", d.join("loop2")).unwrap();
        let err = resolve_symlinks(&d.join("loop1")).unwrap_err();
        assert!(err.to_string().contains("too many levels of symbolic links"), "{err}");
    }

    #[test]
    fn lock_is_exclusive_until_drop() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".hop.lock");
        let guard = lock_exclusive(&path).unwrap();
        let other = File::options().write(true).open(&path).unwrap();
        assert!(other.try_lock().is_err());
        drop(guard);
        other.try_lock().unwrap();
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn backup_once_copies_once() {
        let dir = tempfile::tempdir().unwrap();
        let (src, bak) = (dir.path().join("config"), dir.path().join("config.hop-backup"));
        fs::write(&src, "first").unwrap();
        assert!(backup_once(&src, &bak).unwrap());
        fs::write(&src, "second").unwrap();
        assert!(!backup_once(&src, &bak).unwrap());
        assert_eq!(fs::read(&bak).unwrap(), b"first");
        assert_eq!(mode(&bak), 0o600);
        assert!(temp_files(dir.path()).is_empty());
    }

    #[test]
    fn install_into_empty_home() {
        let h = home();
        let out = run(&h, HOP_TEXT).unwrap();
        assert_eq!(out, InstallOutcome { hop_file_changed: true, user_config_changed: true, backup: None });
        assert_eq!(fs::read_to_string(&h.user_config).unwrap(), format!("{}\n", include(&h)));
        assert_eq!(fs::read_to_string(&h.hop_file).unwrap(), HOP_TEXT);
        for file in [&h.user_config, &h.hop_file] {
            assert_eq!(mode(file), 0o600);
        }
        for dir in [&h.ssh, &h.hop_file.parent().unwrap().to_path_buf()] {
            assert_eq!(mode(dir), 0o700);
        }
        assert!(temp_files(&h.root).is_empty());
    }

    #[test]
    fn rerun_is_byte_identical_and_touches_nothing() {
        let h = home();
        fs::create_dir(&h.ssh).unwrap();
        fs::write(&h.user_config, "Host a\n  User b\n").unwrap();
        run(&h, HOP_TEXT).unwrap();
        let before = (tree(&h.root), stamp(&h.user_config), stamp(&h.hop_file));
        let out = run(&h, HOP_TEXT).unwrap();
        assert_eq!(out, InstallOutcome { hop_file_changed: false, user_config_changed: false, backup: None });
        assert_eq!((tree(&h.root), stamp(&h.user_config), stamp(&h.hop_file)), before);
    }

    #[test]
    fn new_hosts_rewrite_only_the_hop_file() {
        let h = home();
        run(&h, HOP_TEXT).unwrap();
        let user = stamp(&h.user_config);
        let out = run(&h, "Host db\n  HostName 10.0.1.11\n").unwrap();
        assert!(out.hop_file_changed && !out.user_config_changed);
        assert_eq!(stamp(&h.user_config), user);
        assert_eq!(fs::read_to_string(&h.hop_file).unwrap(), "Host db\n  HostName 10.0.1.11\n");
    }

    #[test]
    fn symlinked_user_config_stays_a_link() {
        let h = home();
        fs::create_dir_all(h.root.join("dotfiles")).unwrap();
        fs::create_dir(&h.ssh).unwrap();
        let real = h.root.join("dotfiles/ssh_config");
        fs::write(&real, "Host a\n").unwrap();
        symlink("../dotfiles/ssh_config", &h.user_config).unwrap();
        let out = run(&h, HOP_TEXT).unwrap();
        assert!(fs::symlink_metadata(&h.user_config).unwrap().is_symlink());
        assert_eq!(fs::read_to_string(&real).unwrap(), format!("{}\nHost a\n", include(&h)));
        assert_eq!(mode(&real), 0o600);
        // The backup sits next to the link, not in the dotfiles repo.
        let backup = h.ssh.join("config.hop-backup");
        assert_eq!(out.backup.as_deref(), Some(backup.as_path()));
        assert_eq!(fs::read_to_string(&backup).unwrap(), "Host a\n");
        assert!(temp_files(&h.root).is_empty());
        assert_eq!(fs::read_dir(h.root.join("dotfiles")).unwrap().count(), 1);
    }

    #[test]
    fn backup_is_made_once_and_equals_the_original() {
        let h = home();
        fs::create_dir(&h.ssh).unwrap();
        let original = "# mine\nHost a\n";
        fs::write(&h.user_config, original).unwrap();
        let backup = h.ssh.join("config.hop-backup");
        assert_eq!(run(&h, HOP_TEXT).unwrap().backup, Some(backup.clone()));
        // The user removes hop's line; hop adds it back without a second backup.
        fs::write(&h.user_config, "Host b\n").unwrap();
        let out = run(&h, HOP_TEXT).unwrap();
        assert!(out.user_config_changed);
        assert_eq!(out.backup, None);
        assert_eq!(fs::read_to_string(&backup).unwrap(), original);
        assert_eq!(mode(&backup), 0o600);
    }

    #[test]
    fn user_bytes_are_preserved() {
        let h = home();
        fs::create_dir(&h.ssh).unwrap();
        let top: &[u8] = b"\xEF\xBB\xBF# my config\r\n\
            ServerAliveInterval=30\r\n\
            Include ~/.ssh/config.d/*\r\n\
            \r\n";
        let blocks: &[u8] = b"# all hosts\r\n\
            HOST *\r\n\
            \tUser  me\r\n\
            Match host a exec \"true\"\r\n\
            \x20 IdentityFile \"/a b/c\"   # caf\xE9\r\n\
            Host last";
        let original = [top, blocks].concat();
        fs::write(&h.user_config, &original).unwrap();
        run(&h, HOP_TEXT).unwrap();
        let written = fs::read(&h.user_config).unwrap();
        // Our line goes first, after the byte order mark.
        let expected = [&top[..3], format!("{}\r\n", include(&h)).as_bytes(), &top[3..], blocks].concat();
        assert_eq!(written, expected);
        assert_eq!(
            ssh_config::strip_inserted(&written, h.hop_file.to_str().unwrap(), original.len()).unwrap(),
            original
        );
        let backup = fs::read(h.ssh.join("config.hop-backup")).unwrap();
        assert_eq!(backup, original);
    }

    #[test]
    fn rejected_hop_file_changes_nothing() {
        let h = home();
        fs::create_dir(&h.ssh).unwrap();
        fs::write(&h.user_config, "Host a\n").unwrap();
        let before = tree(&h.root);
        let reject = |p: &Path| -> Result<(), String> {
            assert!(p.to_string_lossy().contains(TEMP_MARK), "validates the candidate");
            Err("line 1: bad".into())
        };
        let err = install(&InstallRequest {
            user_config: &h.user_config,
            hop_file: &h.hop_file,
            hop_text: HOP_TEXT,
            home: &h.root,
            validate: &reject,
        })
        .unwrap_err();
        assert!(matches!(&err, InstallError::Rejected { path, .. } if *path == h.hop_file));
        assert_eq!(err.to_string(), format!("{} was rejected: line 1: bad", h.hop_file.display()));
        // Only the (empty) hop directory and its lock file are new.
        let after: Vec<_> =
            tree(&h.root).into_iter().filter(|(p, _)| !p.starts_with(h.hop_file.parent().unwrap())).collect();
        assert_eq!(after, before);
        assert!(!h.hop_file.exists());
        assert!(temp_files(&h.root).is_empty());
    }

    #[test]
    fn rejected_user_config_restores_the_hop_file() {
        let h = home();
        run(&h, "Host old\n  HostName 10.0.0.1\n").unwrap();
        fs::write(&h.user_config, "Host a\n").unwrap();
        let before = tree(&h.root);
        let hop_file = h.hop_file.clone();
        let reject_user = move |p: &Path| -> Result<(), String> {
            // The candidate hop file sits next to hop's file; the user's next to theirs.
            if p.parent() == hop_file.parent() { Ok(()) } else { Err("bad user config".into()) }
        };
        let err = install(&InstallRequest {
            user_config: &h.user_config,
            hop_file: &h.hop_file,
            hop_text: HOP_TEXT,
            home: &h.root,
            validate: &reject_user,
        })
        .unwrap_err();
        assert!(matches!(&err, InstallError::Rejected { path, .. } if *path == h.user_config));
        assert_eq!(tree(&h.root), before);

        let echo = |p: &Path| -> Result<(), String> { Err(format!("{}: line 1: bad", p.display())) };
        let err = install(&InstallRequest {
            user_config: &h.user_config,
            hop_file: &h.hop_file,
            hop_text: HOP_TEXT,
            home: &h.root,
            validate: &echo,
        })
        .unwrap_err();
        let hop = h.hop_file.display();
        assert_eq!(err.to_string(), format!("{hop} was rejected: {hop}: line 1: bad"));
    }

    #[test]
    fn invalid_hop_text_is_refused() {
        let h = home();
        let err = run(&h, "Host web\n  HostName\n").unwrap_err();
        assert_eq!(err.to_string(), format!("{} line 2: no argument after keyword \"hostname\"", h.hop_file.display()));
        assert!(!h.hop_file.exists() && !h.user_config.exists());
    }

    #[test]
    fn invalid_user_config_is_left_alone() {
        let h = home();
        fs::create_dir(&h.ssh).unwrap();
        fs::write(&h.user_config, "Host a\n  User \"oops\n").unwrap();
        let before = tree(&h.root);
        let err = run(&h, HOP_TEXT).unwrap_err();
        assert!(matches!(&err, InstallError::Invalid { path, line: 3, .. } if *path == h.user_config), "{err}");
        let after: Vec<_> =
            tree(&h.root).into_iter().filter(|(p, _)| !p.starts_with(h.hop_file.parent().unwrap())).collect();
        assert_eq!(after, before);
        assert!(!h.hop_file.exists());
    }

    #[test]
    fn hop_dir_blocked_by_a_file() {
        let h = home();
        fs::create_dir(&h.ssh).unwrap();
        fs::write(h.ssh.join("hop"), "not a directory").unwrap();
        fs::write(&h.user_config, "Host a\n").unwrap();
        let before = tree(&h.root);
        let err = run(&h, HOP_TEXT).unwrap_err();
        match &err {
            InstallError::Io { path, action, .. } => {
                assert_eq!(path, &h.ssh.join("hop"));
                assert_eq!(*action, "cannot create directory");
            }
            other => panic!("{other:?}"),
        }
        assert!(err.to_string().starts_with(&format!("cannot create directory {}: ", h.ssh.join("hop").display())));
        assert_eq!(tree(&h.root), before);
    }

    #[test]
    fn user_config_is_a_directory() {
        let h = home();
        fs::create_dir_all(&h.user_config).unwrap();
        let before = tree(&h.root);
        let err = run(&h, HOP_TEXT).unwrap_err();
        assert!(
            matches!(&err, InstallError::Io { path, action: "cannot read", .. } if *path == h.user_config),
            "{err:?}"
        );
        let after: Vec<_> =
            tree(&h.root).into_iter().filter(|(p, _)| !p.starts_with(h.hop_file.parent().unwrap())).collect();
        assert_eq!(after, before);
        assert!(!h.hop_file.exists());
        assert!(temp_files(&h.root).is_empty());
    }

    #[test]
    fn failure_after_hop_commit_puts_the_old_hop_file_back() {
        let h = home();
        run(&h, "Host old\n  HostName 10.0.0.1\n").unwrap();
        // A dangling link into a directory that does not exist: reading says "missing", so
        // the hop file is committed, then staging the user config next to its target fails.
        fs::remove_file(&h.user_config).unwrap();
        symlink(h.root.join("gone/config"), &h.user_config).unwrap();
        let err = run(&h, HOP_TEXT).unwrap_err();
        match &err {
            InstallError::Io { path, action, .. } => {
                assert_eq!(path, &h.root.join("gone/config"));
                assert_eq!(*action, "cannot write");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(fs::read_to_string(&h.hop_file).unwrap(), "Host old\n  HostName 10.0.0.1\n");
        assert!(fs::symlink_metadata(&h.user_config).unwrap().is_symlink());
        assert!(temp_files(&h.root).is_empty());
    }

    #[test]
    fn a_writer_during_validation_makes_hop_start_over() {
        let h = home();
        fs::create_dir(&h.ssh).unwrap();
        fs::write(&h.user_config, "Host a\n").unwrap();
        let calls = std::cell::Cell::new(0);
        let user_config = h.user_config.clone();
        let meddle = |p: &Path| -> Result<(), String> {
            if p.parent() == Some(h.ssh.as_path()) && calls.get() < 2 {
                calls.set(calls.get() + 1);
                let mut f = OpenOptions::new().append(true).open(&user_config).unwrap();
                writeln!(f, "Host added{}", calls.get()).unwrap();
            }
            Ok(())
        };
        let out = install(&InstallRequest {
            user_config: &h.user_config,
            hop_file: &h.hop_file,
            hop_text: HOP_TEXT,
            home: &h.root,
            validate: &meddle,
        })
        .unwrap();
        assert!(out.user_config_changed);
        assert_eq!(
            fs::read_to_string(&h.user_config).unwrap(),
            format!("{}\nHost a\nHost added1\nHost added2\n", include(&h))
        );
        // The backup is the file as it was when hop replaced it.
        assert_eq!(fs::read_to_string(h.ssh.join("config.hop-backup")).unwrap(), "Host a\nHost added1\nHost added2\n");
        assert!(temp_files(&h.root).is_empty());
    }

    #[test]
    fn a_writer_that_never_stops_gets_a_clean_error() {
        let h = home();
        run(&h, "Host old\n  HostName 10.0.0.1\n").unwrap();
        fs::write(&h.user_config, "Host a\n").unwrap();
        let user_config = h.user_config.clone();
        let hop_dir = h.hop_file.parent().unwrap().to_path_buf();
        let meddle = move |p: &Path| -> Result<(), String> {
            if p.parent() != Some(hop_dir.as_path()) {
                let mut f = OpenOptions::new().append(true).open(&user_config).unwrap();
                writeln!(f, "# again").unwrap();
            }
            Ok(())
        };
        let err = install(&InstallRequest {
            user_config: &h.user_config,
            hop_file: &h.hop_file,
            hop_text: HOP_TEXT,
            home: &h.root,
            validate: &meddle,
        })
        .unwrap_err();
        let InstallError::Contended { attempts, .. } = err else { panic!("{err:?}") };
        // 1 + 2 + … + 128 ms, then 200 ms pauses until the budget is spent.
        assert!((15..=25).contains(&attempts), "{attempts}");
        assert!(
            err.to_string().ends_with(&format!(
                "kept changing, or stayed open for writing in another program, while hop was updating it \
                 ({attempts} attempts in 3 s); try again"
            )),
            "{err}"
        );
        let text = fs::read_to_string(&h.user_config).unwrap();
        assert_eq!(text, format!("Host a\n{}", "# again\n".repeat(attempts as usize)));
        assert_eq!(fs::read_to_string(&h.hop_file).unwrap(), "Host old\n  HostName 10.0.0.1\n");
        assert!(temp_files(&h.root).is_empty());
    }

    #[test]
    fn bytes_written_into_the_replaced_file_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        fs::write(&path, "Host a\n").unwrap();
        let mut snapshot = Snapshot::take(&path).unwrap();
        let mut late_writer = OpenOptions::new().append(true).open(&path).unwrap();
        assert!(snapshot.is_current(&path).unwrap());
        write_atomic(&path, b"Include x\nHost a\n", 0o600).unwrap();
        assert!(!snapshot.is_current(&path).unwrap());
        assert_eq!(snapshot.reread().unwrap(), None);
        late_writer.write_all(b"Host late\n").unwrap();
        assert_eq!(snapshot.reread().unwrap().unwrap(), b"Host a\nHost late\n");
    }

    /// Opens the user config for appending right after hop's last look, as `echo … >>` might,
    /// and writes `line` into it `delay` later from another thread, then closes it.
    fn late_appender(path: &Path, line: &'static str, delay: Duration) -> test_hook::Guard {
        let path = path.to_path_buf();
        test_hook::set_before_rename(move || {
            let mut f = OpenOptions::new().append(true).open(&path).unwrap();
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                f.write_all(line.as_bytes()).unwrap();
            });
        })
    }

    #[test]
    fn bytes_appended_to_the_replaced_file_are_carried_over() {
        let h = home();
        fs::create_dir(&h.ssh).unwrap();
        fs::write(&h.user_config, "Host a\n").unwrap();
        // Opened after hop's last look, written after its rename: the write lands in the old
        // inode, which is no longer ~/.ssh/config. hop waits for the writer to close it.
        let _hook = late_appender(&h.user_config, "Host late\n", Duration::from_millis(30));
        let out = run(&h, HOP_TEXT).unwrap();
        assert!(out.user_config_changed);
        assert_eq!(fs::read_to_string(&h.user_config).unwrap(), format!("{}\nHost a\nHost late\n", include(&h)));
        assert_eq!(fs::read_to_string(h.ssh.join("config.hop-backup")).unwrap(), "Host a\n");
        assert!(temp_files(&h.root).is_empty());
    }

    #[test]
    fn bytes_written_right_after_the_rename_are_carried_over() {
        let h = home();
        fs::create_dir(&h.ssh).unwrap();
        fs::write(&h.user_config, "Host a\n").unwrap();
        let user_config = h.user_config.clone();
        let late = Rc::new(RefCell::new(None));
        let _open = test_hook::set_before_rename({
            let late = Rc::clone(&late);
            move || *late.borrow_mut() = Some(OpenOptions::new().append(true).open(&user_config).unwrap())
        });
        let _write = test_hook::set_after_rename(move || {
            late.borrow_mut().take().unwrap().write_all(b"Host late\n").unwrap();
        });
        run(&h, HOP_TEXT).unwrap();
        assert_eq!(fs::read_to_string(&h.user_config).unwrap(), format!("{}\nHost a\nHost late\n", include(&h)));
    }

    #[test]
    fn an_in_place_rewrite_of_the_replaced_file_wins() {
        let h = home();
        fs::create_dir(&h.ssh).unwrap();
        fs::write(&h.user_config, "Host a\n").unwrap();
        // Like an editor that truncates and rewrites the file it has open.
        let user_config = h.user_config.clone();
        let editor = Rc::new(RefCell::new(None));
        let _open = test_hook::set_before_rename({
            let editor = Rc::clone(&editor);
            move || *editor.borrow_mut() = Some(OpenOptions::new().write(true).open(&user_config).unwrap())
        });
        let _write = test_hook::set_after_rename(move || {
            let mut f = editor.borrow_mut().take().unwrap();
            f.set_len(0).unwrap();
            f.write_all(b"Host theirs\n").unwrap();
        });
        run(&h, HOP_TEXT).unwrap();
        assert_eq!(fs::read_to_string(&h.user_config).unwrap(), format!("{}\nHost theirs\n", include(&h)));
    }

    /// Linux only (read leases): a program with the file open for writing may write at any
    /// moment, so hop waits for it to close the file rather than replace it under it.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_writer_with_the_file_open_is_waited_for() {
        let h = home();
        fs::create_dir(&h.ssh).unwrap();
        fs::write(&h.user_config, "Host a\n").unwrap();
        let mut f = OpenOptions::new().append(true).open(&h.user_config).unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            f.write_all(b"Host late\n").unwrap();
        });
        run(&h, HOP_TEXT).unwrap();
        writer.join().unwrap();
        assert_eq!(fs::read_to_string(&h.user_config).unwrap(), format!("{}\nHost a\nHost late\n", include(&h)));
        assert_eq!(fs::read_to_string(h.ssh.join("config.hop-backup")).unwrap(), "Host a\nHost late\n");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_writer_that_keeps_the_file_open_gets_a_clean_error_and_nothing_changes() {
        let h = home();
        run(&h, "Host old\n  HostName 10.0.0.1\n").unwrap();
        fs::write(&h.user_config, "Host a\n").unwrap();
        let hop_before = fs::read(&h.hop_file).unwrap();
        let _held = OpenOptions::new().append(true).open(&h.user_config).unwrap();
        let err = install(&InstallRequest {
            user_config: &h.user_config,
            hop_file: &h.hop_file.with_file_name("other"),
            hop_text: HOP_TEXT,
            home: &h.root,
            validate: &accept,
        })
        .unwrap_err();
        assert!(matches!(err, InstallError::Contended { .. }), "{err:?}");
        assert_eq!(fs::read_to_string(&h.user_config).unwrap(), "Host a\n");
        assert_eq!(fs::read(&h.hop_file).unwrap(), hop_before);
        assert!(!h.hop_file.with_file_name("other").exists());
        assert!(temp_files(&h.root).is_empty());
    }

    #[test]
    fn leases_see_writers_and_are_not_believed_on_network_filesystems() {
        let h = home();
        let path = h.root.join("f");
        fs::write(&path, "x").unwrap();
        let reader = File::open(&path).unwrap();
        if cfg!(target_os = "linux") {
            assert!(leases::trustworthy(&path), "a local temporary directory must support read leases");
            assert_eq!(leases::open_for_writing(&reader), Some(false));
            let writer = OpenOptions::new().append(true).open(&path).unwrap();
            assert_eq!(leases::open_for_writing(&reader), Some(true));
            assert!(!leases::trustworthy(&path));
            drop(writer);
            assert_eq!(leases::open_for_writing(&reader), Some(false));
        } else {
            assert!(!leases::trustworthy(&path));
        }
        for (magic, network) in [
            (0x6969, true),
            (0xFF534D42, true),
            (0xFE534D42, true),
            (0x00C36400, true),
            (0x01021997, true),
            (0xFFFF_FFFF_FF53_4D42_u64 as i64, true), // sign-extended 32-bit f_type
            (0xEF53, false),                          // ext4
            (0x58465342, false),                      // XFS
            (0x01021994, false),                      // tmpfs
            (0x794C7630, false),                      // overlayfs
            (0x9123683E, false),                      // btrfs
        ] {
            assert_eq!(leases::is_network_magic(magic), network, "{magic:#x}");
        }
    }

    #[test]
    fn pending_bytes_are_carried_over() {
        let append = Pending::Append(b"Host late\n".to_vec());
        assert_eq!(append.base(b"Include x\nHost a\n"), b"Include x\nHost a\nHost late\n");
        let rewrite = Pending::Rewrite { content: b"Host theirs\n".to_vec(), ours: b"Include x\nHost a\n".to_vec() };
        assert_eq!(rewrite.base(b"Include x\nHost a\nHost b\n"), b"Host theirs\nHost b\n");
        assert_eq!(rewrite.base(b"Host replaced\n"), b"Host replaced\n");
        assert_eq!(Pending::Nothing.base(b"x"), b"x");
    }

    /// Every install here has to rewrite the user config (each names a new hop file), so
    /// the foreign appender keeps hitting the window between hop's last check and its
    /// rename; bytes it writes into the replaced file must be carried over.
    #[test]
    fn every_install_rewrites_while_a_foreign_writer_appends() {
        let h = Arc::new(home());
        fs::create_dir_all(h.hop_file.parent().unwrap()).unwrap();
        fs::write(&h.user_config, "Host *\n").unwrap();
        const INSTALLERS: usize = 8;
        const ROUNDS: usize = 10;
        const USER_LINES: usize = 400;
        let start = Arc::new(Barrier::new(INSTALLERS + 1));
        let hop_file = |t: usize, r: usize| h.hop_file.with_file_name(format!("config-{t}-{r}"));
        let mut threads = Vec::new();
        for t in 0..INSTALLERS {
            let (h, start) = (Arc::clone(&h), Arc::clone(&start));
            threads.push(std::thread::spawn(move || {
                start.wait();
                for r in 0..ROUNDS {
                    let hop_file = h.hop_file.with_file_name(format!("config-{t}-{r}"));
                    install(&InstallRequest {
                        user_config: &h.user_config,
                        hop_file: &hop_file,
                        hop_text: HOP_TEXT,
                        home: &h.root,
                        validate: &accept,
                    })
                    .unwrap();
                }
            }));
        }
        let writer = {
            let (h, start) = (Arc::clone(&h), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                for i in 0..USER_LINES {
                    let mut f = OpenOptions::new().append(true).open(&h.user_config).unwrap();
                    f.write_all(format!("Host user{i}\n").as_bytes()).unwrap();
                    drop(f);
                    // Spread the writes over the installers' lifetime.
                    std::thread::sleep(std::time::Duration::from_micros(200));
                }
            })
        };
        for t in threads {
            t.join().unwrap();
        }
        writer.join().unwrap();

        let text = fs::read_to_string(&h.user_config).unwrap();
        for t in 0..INSTALLERS {
            for r in 0..ROUNDS {
                let inc = ssh_config::include_line(hop_file(t, r).to_str().unwrap());
                assert_eq!(text.lines().filter(|l| *l == inc).count(), 1, "{inc} in {text}");
            }
        }
        for i in 0..USER_LINES {
            let line = format!("Host user{i}");
            assert_eq!(text.lines().filter(|l| *l == line).count(), 1, "{line} in {text}");
        }
        assert_eq!(text.lines().count(), INSTALLERS * ROUNDS + 1 + USER_LINES);
        assert!(temp_files(&h.root).is_empty());
    }

    #[test]
    fn concurrent_installs_and_a_foreign_writer() {
        let h = Arc::new(home());
        fs::create_dir(&h.ssh).unwrap();
        fs::write(&h.user_config, "# mine\nHost *\n  ServerAliveInterval 30\n").unwrap();
        const INSTALLERS: usize = 8;
        const ROUNDS: usize = 25;
        const USER_LINES: usize = 300;
        let start = Arc::new(Barrier::new(INSTALLERS + 1));
        let mut threads = Vec::new();
        for _ in 0..INSTALLERS {
            let (h, start) = (Arc::clone(&h), Arc::clone(&start));
            threads.push(std::thread::spawn(move || {
                start.wait();
                for _ in 0..ROUNDS {
                    run(&h, HOP_TEXT).unwrap();
                }
            }));
        }
        let writer = {
            let (h, start) = (Arc::clone(&h), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                for i in 0..USER_LINES {
                    // Like `echo … >> ~/.ssh/config`: one O_APPEND write per line.
                    let mut f = OpenOptions::new().append(true).open(&h.user_config).unwrap();
                    f.write_all(format!("Host user{i}\n").as_bytes()).unwrap();
                    drop(f);
                    std::thread::yield_now();
                }
            })
        };
        for t in threads {
            t.join().unwrap();
        }
        writer.join().unwrap();
        run(&h, HOP_TEXT).unwrap();

        let text = fs::read_to_string(&h.user_config).unwrap();
        let inc = include(&h);
        assert_eq!(text.lines().filter(|l| *l == inc).count(), 1, "{text}");
        assert!(text.starts_with(&format!("{inc}\n# mine\nHost *\n")), "{text}");
        for i in 0..USER_LINES {
            let line = format!("Host user{i}");
            assert_eq!(text.lines().filter(|l| *l == line).count(), 1, "{line} in {text}");
        }
        assert_eq!(text.lines().count(), 1 + 3 + USER_LINES);
        assert_eq!(fs::read_to_string(&h.hop_file).unwrap(), HOP_TEXT);
        assert!(temp_files(&h.root).is_empty());
    }
}
