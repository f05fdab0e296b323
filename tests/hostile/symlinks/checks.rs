//! The checks of a share full of symlinks, in every dialect: walks, stats,
//! opens, reads and listings through each link.

use super::*;

impl Checks<'_, '_> {
    pub(super) fn check(
        &mut self,
        what: impl std::fmt::Display,
        ok: bool,
        detail: impl std::fmt::Debug,
    ) {
        if !ok {
            let dialect = self.dialect;
            self.failures.push(format!("{dialect} {what}: {detail:?}"));
        }
    }

    pub(super) fn linux(&self) -> bool {
        self.dialect == "9P2000.L"
    }

    /// Fid `fid` walked afresh from the root over all of `names`.
    pub(super) fn at(&mut self, fid: u32, names: &[&str]) -> bool {
        self.c.clunk(fid);
        let reply = self.c.walk(ROOT, fid, names);
        let whole = matches!(reply.msg(), Rmessage::Walk(w) if w.qids.len() == names.len());
        self.check(format_args!("walk {names:?}"), whole, reply.msg());
        whole
    }

    /// Expects an error (any, or `errno`) for `msg`.
    pub(super) fn refused(
        &mut self,
        what: impl std::fmt::Display,
        msg: Tmessage<'_>,
        errno: Option<i32>,
    ) {
        let reply = self.c.call(msg);
        let ok = match errno {
            Some(e) => reply.errno() == Some(e),
            None => reply.errno().is_some(),
        };
        self.check(what, ok, format!("{:?}, want {errno:?}", reply.msg()));
    }

    pub(super) fn succeeds(&mut self, what: impl std::fmt::Display, msg: Tmessage<'_>) -> Reply {
        let reply = self.c.call(msg);
        self.check(what, reply.errno().is_none(), reply.msg());
        reply
    }

    pub(super) fn open(&mut self, fid: u32, flags: u32, mode: u8) -> Reply {
        if self.linux() {
            self.c.call(Tmessage::Lopen(Tlopen { fid, flags }))
        } else {
            self.c.call(Tmessage::Open(Topen { fid, mode }))
        }
    }

    pub(super) fn read_all(&mut self, fid: u32) -> Vec<u8> {
        let mut data = Vec::new();
        loop {
            let reply = self.c.call(Tmessage::Read(Tread {
                fid,
                offset: data.len() as u64,
                count: 8192,
            }));
            self.check("Tread", reply.errno().is_none(), reply.msg());
            if reply.errno().is_some() || reply.data().is_empty() {
                return data;
            }
            data.extend_from_slice(reply.data());
        }
    }

    /// The link as this dialect shows it: stat, open, read.
    pub(super) fn link(&mut self, link: &Link) {
        let names = link.names.clone();
        let target = link.target.as_str();
        if !self.at(AT, &names) {
            return;
        }
        match self.dialect {
            "9P2000.L" => {
                let getattr = Tmessage::Getattr(Tgetattr {
                    fid: AT,
                    request_mask: 0x7ff,
                });
                if let Rmessage::Getattr(a) = self.succeeds("Tgetattr", getattr).msg() {
                    let got = (a.mode, a.size);
                    let want = (libc::S_IFLNK | 0o777, target.len() as u64);
                    self.check(format_args!("Rgetattr {names:?}"), got == want, (got, want));
                }
                let readlink = Tmessage::Readlink(Treadlink { fid: AT });
                if let Rmessage::Readlink(r) = self.succeeds("Treadlink", readlink).msg() {
                    let got = r.target.as_bytes();
                    self.check(
                        format_args!("Rreadlink {names:?}"),
                        got == target.as_bytes(),
                        got,
                    );
                }
                for flags in [0, libc::O_RDWR as u32 | libc::O_TRUNC as u32] {
                    let open = Tmessage::Lopen(Tlopen { fid: AT, flags });
                    let what = format_args!("Tlopen {names:?} {flags:#o}");
                    self.refused(what, open, Some(libc::ELOOP));
                }
            }
            "9P2000.u" => {
                let stat = self.stat(AT);
                let want = (DMSYMLINK | 0o777, target.len() as u64, Some(target.into()));
                self.check(
                    format_args!("Rstat {names:?}"),
                    stat == want,
                    (&stat, &want),
                );
                self.content_is(&names, target.as_bytes());
            }
            _ => self.followed(link),
        }
        self.control_files(link);
    }

    /// (mode, length, extension) of a fid's Rstat.
    pub(super) fn stat(&mut self, fid: u32) -> (u32, u64, Option<String>) {
        let reply = self.succeeds("Tstat", Tmessage::Stat(Tstat { fid }));
        match reply.msg() {
            Rmessage::Stat(s) => {
                let r = record(&s.stat.0);
                (r.mode, r.length, r.extension)
            }
            _ => (u32::MAX, 0, None),
        }
    }

    /// A Plan 9 open of `names` reads `content`, and refuses writing.
    pub(super) fn content_is(&mut self, names: &[&str], content: &[u8]) {
        self.at(AT, names);
        self.succeeds("Topen", Tmessage::Open(Topen { fid: AT, mode: 0 }));
        let data = self.read_all(AT);
        self.check(
            format_args!("read {names:?}"),
            data == content,
            String::from_utf8_lossy(&data),
        );
        for mode in [1, 2, 0x11] {
            self.at(AT, names);
            let open = Tmessage::Open(Topen { fid: AT, mode });
            self.refused(format_args!("Topen {names:?} {mode:#x}"), open, None);
        }
    }

    /// 9P2000: the link followed inside the share; through `,nofollow`,
    /// a file holding its target.
    pub(super) fn followed(&mut self, link: &Link) {
        let names = link.names.clone();
        let (mode, length, _) = self.stat(AT);
        match link.end {
            End::File(content) => {
                let ok = mode & !0o777 == 0 && length == content.len() as u64;
                self.check(format_args!("Rstat {names:?}"), ok, (mode, length));
                self.at(AT, &names);
                self.succeeds("Topen", Tmessage::Open(Topen { fid: AT, mode: 0 }));
                let data = self.read_all(AT);
                self.check(
                    format_args!("read {names:?}"),
                    data == content,
                    String::from_utf8_lossy(&data),
                );
            }
            End::Dir(path) => {
                let stat = self.succeeds("Tstat", Tmessage::Stat(Tstat { fid: AT }));
                let qid = match stat.msg() {
                    Rmessage::Stat(s) => s.stat.0.qid,
                    _ => Qid::default(),
                };
                let want = if path.is_empty() {
                    self.root.path
                } else {
                    self.root_entry_qid(path)
                };
                let ok = mode & DMDIR != 0 && qid.path == want;
                self.check(format_args!("Rstat {names:?}"), ok, (mode, qid, want));
                self.succeeds("Topen", Tmessage::Open(Topen { fid: AT, mode: 0 }));
                let data = self.read_all(AT);
                let listed =
                    records(&data).map(|r| r.into_iter().map(|r| r.name).collect::<Vec<_>>());
                let want = if path.is_empty() { "f" } else { "b" };
                let ok = listed.as_ref().is_some_and(|l| l.iter().any(|n| n == want));
                self.check(format_args!("list {names:?}"), ok, listed);
            }
            End::Dangling => {
                self.check(
                    format_args!("Rstat {names:?}"),
                    (mode, length) == (0, 0),
                    (mode, length),
                );
                self.at(AT, &names);
                let open = Tmessage::Open(Topen { fid: AT, mode: 0 });
                self.refused(format_args!("Topen {names:?}"), open, Some(libc::EACCES));
            }
        }
        // Through `,nofollow`: a read-only file holding the target.
        let mut nofollow = vec![",nofollow"];
        nofollow.extend_from_slice(&names);
        self.at(AT, &nofollow);
        let stat = self.stat(AT);
        let want = (DMAPPEND | 0o444, link.target.len() as u64, None);
        self.check(
            format_args!("Rstat {nofollow:?}"),
            stat == want,
            (&stat, &want),
        );
        self.content_is(&nofollow, link.target.as_bytes());
    }

    /// The qid path of a directory of the share, by its host inode.
    pub(super) fn root_entry_qid(&mut self, path: &str) -> u64 {
        self.c.clunk(DIR);
        let reply = self.c.walk(ROOT, DIR, &[path]);
        let path = match reply.msg() {
            Rmessage::Walk(w) => w.qids.as_slice().last().map_or(0, |q| q.path),
            _ => 0,
        };
        self.c.clunk(DIR);
        path
    }

    /// `,ctl/LINK` reads the stat of what the link leads to inside the
    /// share (the link's own when it leads nowhere); `,ctl,nofollow/LINK`
    /// the link's.
    pub(super) fn control_files(&mut self, link: &Link) {
        let (last, parent) = link.names.split_last().unwrap();
        let target = &link.target;
        for ctl in [",ctl", ",ctl,nofollow"] {
            let mut names = parent.to_vec();
            names.extend([ctl, *last]);
            self.at(CTL, &names);
            let open = self.open(CTL, 0, 0);
            self.check(
                format_args!("open {names:?}"),
                open.errno().is_none(),
                open.msg(),
            );
            let line = String::from_utf8_lossy(&self.read_all(CTL)).into_owned();
            let wants = match (ctl, link.end) {
                (",ctl", End::File(content)) => vec![format!(" size {} ", content.len())],
                (",ctl", End::Dir(_)) => vec![" mode 040".into()],
                _ => vec![" mode 0120777 ".into(), format!(" symlink {target}\n")],
            };
            let ok = wants.iter().all(|w| line.contains(w.as_str()));
            self.check(format_args!("read {names:?}"), ok, (line, wants));
        }
        self.c.clunk(CTL);
    }

    /// Every entry of the share's root as a directory read shows it.
    pub(super) fn listing(&mut self, links: &[Link]) {
        self.at(DIR, &[]);
        let open = self.open(DIR, libc::O_DIRECTORY as u32, 0);
        self.check("open /", open.errno().is_none(), open.msg());
        if self.linux() {
            let readdir = Tmessage::Readdir(Treaddir {
                fid: DIR,
                offset: 0,
                count: 65536,
            });
            let reply = self.succeeds("Treaddir /", readdir);
            let names: Vec<String> = entries(reply.data()).into_iter().map(|e| e.1).collect();
            let ok = links
                .iter()
                .filter(|l| l.names.len() == 1)
                .all(|l| names.contains(&l.names[0].to_string()));
            self.check("Treaddir / lists every link", ok, names);
        } else {
            let data = self.read_all(DIR);
            let records = records(&data).unwrap_or_default();
            for link in links.iter().filter(|l| l.names.len() == 1) {
                let found = records.iter().find(|r| r.name == link.names[0]);
                let ok = found.is_some_and(|r| match (self.dialect, link.end) {
                    ("9P2000.u", _) => {
                        r.mode == DMSYMLINK | 0o777
                            && r.extension.as_deref() == Some(link.target.as_str())
                    }
                    (_, End::Dangling) => r.mode == 0 && r.length == 0,
                    (_, End::File(content)) => {
                        r.mode & !0o777 == 0 && r.length == content.len() as u64
                    }
                    (_, End::Dir(_)) => r.mode & DMDIR != 0,
                });
                self.check(format_args!("listed {}", link.names[0]), ok, found);
            }
        }
        self.c.clunk(DIR);
    }
}
