//! Who a session's requests act as, and the host's user database.
//!
//! A VMM's guest names its users in Tattach and its own kernel checks their
//! permissions: its requests run with the daemon's credentials, as QEMU's
//! 9p server does. A client on a socket is a local process or a network
//! peer: its requests run with the credentials of the user it acts as
//! (the thread's filesystem uid, gid and groups), so the host kernel
//! checks them. Who that is: the connecting process itself on a Unix socket
//! (SO_PEERCRED), whatever it names; the user it names when the peer is
//! root or the daemon's own user, or over TCP (`--no-auth`); uid 0 squashed
//! to 65534 unless `--no-root-squash`.
//!
//! User and group names come from the host's `/etc/passwd` and
//! `/etc/group`, read once at start: no NSS module is ever loaded (it would
//! come from the share once the daemon is confined to it).

use std::collections::HashMap;
use std::sync::Arc;

use super::host;

/// The uid (and gid) a squashed root acts as: nobody.
pub const NOBODY: u32 = 65534;

/// Credentials a request runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// The user a fid was attached as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The uid the guest sees as the fid's user (new files' owner).
    pub uid: u32,
    /// Run this user's requests with these credentials (None: the
    /// daemon's own, as for a VMM's guest).
    pub acts: Option<Credentials>,
}

impl User {
    /// A user whose requests run with the daemon's credentials.
    pub fn guest(uid: u32) -> Arc<User> {
        Arc::new(User { uid, acts: None })
    }
}

/// How a session's Tattach picks its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Users {
    /// The uid the client names, run with the daemon's credentials: a
    /// VMM's guest (its kernel checks permissions).
    Guest,
    /// The uid the client names, run with that user's credentials (a root
    /// or same-user peer on a Unix socket, a TCP client under --no-auth);
    /// uid 0 acts as 65534 when `root_squash`.
    Named { root_squash: bool },
    /// The connecting process's own credentials, whatever it names.
    Peer(Credentials),
}

/// The host's users and groups, from /etc/passwd and /etc/group.
#[derive(Debug, Default)]
pub struct UserDb {
    users: HashMap<u32, String>,
    uids: HashMap<String, (u32, u32)>,
    groups: HashMap<u32, String>,
    gids: HashMap<String, u32>,
    /// Supplementary groups per user name.
    members: HashMap<String, Vec<u32>>,
}

impl UserDb {
    /// The host's database, read from /etc/passwd and /etc/group at the
    /// first call (before the sandbox leaves the host's file system) and
    /// kept; missing files give an empty database.
    pub fn host() -> &'static UserDb {
        static HOST: std::sync::OnceLock<UserDb> = std::sync::OnceLock::new();
        HOST.get_or_init(|| {
            let read = |path| std::fs::read(path).unwrap_or_default();
            UserDb::parse(&read("/etc/passwd"), &read("/etc/group"))
        })
    }

    /// Parses passwd(5) and group(5) text; malformed lines are skipped.
    pub fn parse(passwd: &[u8], group: &[u8]) -> UserDb {
        let mut db = UserDb::default();
        for line in lines(passwd) {
            let fields: Vec<&str> = line.split(':').collect();
            let (Some(name), Some(uid), Some(gid)) = (fields.first(), fields.get(2), fields.get(3))
            else {
                continue;
            };
            let (Ok(uid), Ok(gid)) = (uid.parse::<u32>(), gid.parse::<u32>()) else {
                continue;
            };
            db.users.entry(uid).or_insert_with(|| name.to_string());
            db.uids.entry(name.to_string()).or_insert((uid, gid));
        }
        for line in lines(group) {
            let fields: Vec<&str> = line.split(':').collect();
            let (Some(name), Some(gid)) = (fields.first(), fields.get(2)) else {
                continue;
            };
            let Ok(gid) = gid.parse::<u32>() else {
                continue;
            };
            db.groups.entry(gid).or_insert_with(|| name.to_string());
            db.gids.entry(name.to_string()).or_insert(gid);
            for member in fields.get(3).unwrap_or(&"").split(',') {
                if !member.is_empty() {
                    db.members.entry(member.to_string()).or_default().push(gid);
                }
            }
        }
        db
    }

    /// The name of a uid, or the number as a string when unknown.
    pub fn user(&self, uid: u32) -> String {
        self.users
            .get(&uid)
            .cloned()
            .unwrap_or_else(|| uid.to_string())
    }

    pub fn group(&self, gid: u32) -> String {
        self.groups
            .get(&gid)
            .cloned()
            .unwrap_or_else(|| gid.to_string())
    }

    /// The uid a name (or a number) stands for.
    pub fn uid_of(&self, name: &[u8]) -> Option<u32> {
        number(name).or_else(|| {
            let name = std::str::from_utf8(name).ok()?;
            self.uids.get(name).map(|&(uid, _)| uid)
        })
    }

    pub fn gid_of(&self, name: &[u8]) -> Option<u32> {
        number(name).or_else(|| self.gids.get(std::str::from_utf8(name).ok()?).copied())
    }

    /// The credentials of a host user: its primary group and the groups
    /// that list it; a uid without an entry gets group 65534 and no others.
    pub fn credentials(&self, uid: u32) -> Credentials {
        let Some(name) = self.users.get(&uid) else {
            return Credentials {
                uid,
                gid: NOBODY,
                groups: Vec::new(),
            };
        };
        let gid = self.uids.get(name).map_or(NOBODY, |&(_, gid)| gid);
        let mut groups = self.members.get(name).cloned().unwrap_or_default();
        groups.sort_unstable();
        groups.dedup();
        Credentials { uid, gid, groups }
    }
}

fn lines(text: &[u8]) -> impl Iterator<Item = &str> {
    text.split(|&b| b == b'\n')
        .filter_map(|l| std::str::from_utf8(l).ok())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

pub(super) fn number(name: &[u8]) -> Option<u32> {
    std::str::from_utf8(name).ok()?.parse().ok()
}

/// Whether the daemon may take on other users' credentials (it runs as
/// root); without that every request runs with its own.
pub fn may_switch() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl Users {
    /// The user a Tattach naming `named` (a uid) gets.
    pub fn attach(&self, named: u32, db: &UserDb) -> Arc<User> {
        let acting = |creds: Credentials| {
            let acts = (may_switch() && creds.uid != 0).then_some(creds.clone());
            Arc::new(User {
                uid: creds.uid,
                acts,
            })
        };
        match self {
            Users::Guest => User::guest(named),
            Users::Named { root_squash } => {
                let uid = if *root_squash && named == 0 {
                    NOBODY
                } else {
                    named
                };
                acting(db.credentials(uid))
            }
            Users::Peer(creds) => acting(creds.clone()),
        }
    }
}

/// Makes the calling thread act as `user` for the request it serves next
/// (no system call when it already does).
pub fn act_as(user: Option<&User>) -> std::io::Result<()> {
    host::set_thread_credentials(
        user.and_then(|u| u.acts.as_ref())
            .map(|c| (c.uid, c.gid, c.groups.as_slice())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/bash\n\
        # a comment\n\
        alice:x:1000:1000::/home/alice:/bin/sh\n\
        broken line\n\
        bob:x:1001:100::/home/bob:/bin/sh\n";
    const GROUP: &[u8] = b"root:x:0:\nusers:x:100:alice\nalice:x:1000:\nstaff:x:50:alice,bob\n";

    #[test]
    fn names_and_numbers_both_ways() {
        let db = UserDb::parse(PASSWD, GROUP);
        assert_eq!(db.user(1000), "alice");
        assert_eq!(db.user(4242), "4242");
        assert_eq!(db.group(50), "staff");
        assert_eq!(db.uid_of(b"bob"), Some(1001));
        assert_eq!(db.uid_of(b"77"), Some(77));
        assert_eq!(db.uid_of(b"nobody-here"), None);
        assert_eq!(db.gid_of(b"users"), Some(100));
    }

    #[test]
    fn credentials_come_with_primary_and_listed_groups() {
        let db = UserDb::parse(PASSWD, GROUP);
        assert_eq!(
            db.credentials(1000),
            Credentials {
                uid: 1000,
                gid: 1000,
                groups: vec![50, 100]
            }
        );
        assert_eq!(db.credentials(1001).groups, vec![50]);
        assert_eq!(db.credentials(5).gid, NOBODY);
    }

    #[test]
    fn root_is_squashed_unless_told_not_to() {
        let db = UserDb::parse(PASSWD, GROUP);
        let squashed = Users::Named { root_squash: true }.attach(0, &db);
        assert_eq!(squashed.uid, NOBODY);
        let root = Users::Named { root_squash: false }.attach(0, &db);
        assert_eq!(root.uid, 0);
        assert_eq!(root.acts, None); // root acts with the daemon's own
        let peer = Credentials {
            uid: 1001,
            gid: 100,
            groups: vec![],
        };
        assert_eq!(Users::Peer(peer).attach(0, &db).uid, 1001);
        assert_eq!(Users::Guest.attach(0, &db).acts, None);
    }
}
