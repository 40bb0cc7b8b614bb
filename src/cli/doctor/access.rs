//! Whether the service user may read a path: the user's ids looked up, and access(2)
//! checked as that user (in a forked child that takes its identity when run as root).

use std::path::Path;

/// The user the packaged unit runs the daemon as (`User=` in frameseek.service).
pub const SERVICE_USER: &str = "frameseek";

/// Who the footage must be readable by.
pub(super) struct Account {
    /// The user name.
    pub(super) name: String,
    uid: u32,
    gid: u32,
    groups: Vec<libc::gid_t>,
}

/// The service user: `--service-user`, else `frameseek` when run as root, else the current
/// user. `Err` says why it cannot be looked up.
pub(super) fn service_account(named: Option<&str>) -> Result<Account, String> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let name = match named {
        Some(n) => n.to_string(),
        None if euid == 0 => SERVICE_USER.to_string(),
        None => return lookup_uid(euid).ok_or_else(|| format!("uid {euid} has no passwd entry")),
    };
    lookup_name(&name).ok_or_else(|| {
        format!("user {name:?} does not exist (the package creates it with systemd-sysusers)")
    })
}

fn account_of(pw: *const libc::passwd) -> Option<Account> {
    if pw.is_null() {
        return None;
    }
    // SAFETY: a non-null entry from getpwnam/getpwuid, read before the next such call.
    let (name, uid, gid) = unsafe {
        (
            std::ffi::CStr::from_ptr((*pw).pw_name).to_owned(),
            (*pw).pw_uid,
            (*pw).pw_gid,
        )
    };
    let mut groups = vec![0 as libc::gid_t; 256];
    let mut n = groups.len() as libc::c_int;
    // SAFETY: `groups` has room for `n` ids; getgrouplist writes at most `n` and sets `n`.
    let r = unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
    groups.truncate(if r < 0 { 0 } else { n as usize });
    Some(Account {
        name: name.to_string_lossy().into_owned(),
        uid,
        gid,
        groups,
    })
}

fn lookup_name(name: &str) -> Option<Account> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: a valid NUL-terminated name; the result is read at once.
    account_of(unsafe { libc::getpwnam(c.as_ptr()) })
}

fn lookup_uid(uid: u32) -> Option<Account> {
    // SAFETY: getpwuid with any uid; the result is read at once.
    account_of(unsafe { libc::getpwuid(uid) })
}

/// Whether `account` may read (and, for a folder, enter and list) `path`: access(2) as
/// that user, in a child that takes its identity when we are root and it is someone else.
pub(super) fn may_read(account: &Account, path: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mode = if path.is_dir() {
        libc::R_OK | libc::X_OK
    } else {
        libc::R_OK
    };
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid == account.uid {
        // SAFETY: a valid path; faccessat with AT_EACCESS checks the effective ids.
        let r = unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), mode, libc::AT_EACCESS) };
        return if r == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        };
    }
    if euid != 0 {
        return Err(std::io::Error::other(format!(
            "cannot check for user {} without root: run `sudo frameseek doctor`",
            account.name
        )));
    }
    // SAFETY: the child calls only async-signal-safe functions (setgroups, setgid, setuid,
    // access, _exit) on memory prepared before the fork.
    unsafe {
        let pid = libc::fork();
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if pid == 0 {
            let code = if libc::setgroups(account.groups.len(), account.groups.as_ptr()) != 0
                || libc::setgid(account.gid) != 0
                || libc::setuid(account.uid) != 0
            {
                255
            } else if libc::access(c.as_ptr(), mode) == 0 {
                0
            } else {
                *libc::__errno_location() & 0xff
            };
            libc::_exit(code);
        }
        let mut status = 0;
        if libc::waitpid(pid, &mut status, 0) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        match libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)) {
            Some(0) => Ok(()),
            Some(255) | None => Err(std::io::Error::other(format!(
                "cannot take the identity of user {}",
                account.name
            ))),
            Some(errno) => Err(std::io::Error::from_raw_os_error(errno)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_user_reads_what_it_owns() {
        // SAFETY: geteuid has no preconditions.
        let me = lookup_uid(unsafe { libc::geteuid() }).unwrap();
        let dir = tempfile::tempdir().unwrap();
        assert!(may_read(&me, dir.path()).is_ok());
    }
}
