//! Every request that could open a node, in each dialect.

use super::*;

/// Runs every request that could open `node` in `c`'s dialect and checks
/// the guest's view of it; returns what went otherwise than wanted.
pub(super) fn every_open(c: &mut dyn TypedClient, dialect: &str, node: &Node) -> Vec<String> {
    let mut run = Battery {
        c,
        dialect,
        node,
        failures: Vec::new(),
    };
    run.views();
    if dialect == "9P2000.L" {
        run.linux();
    } else {
        run.plan9();
    }
    run.control_file();
    run.failures
}

struct Battery<'a> {
    c: &'a mut dyn TypedClient,
    dialect: &'a str,
    node: &'a Node,
    failures: Vec<String>,
}

impl Battery<'_> {
    fn check(&mut self, what: impl Display, ok: bool, detail: impl Display) {
        if !ok {
            let (dialect, name) = (self.dialect, &self.node.name);
            self.failures
                .push(format!("{dialect} {name}: {what}: {detail}"));
        }
    }

    fn expect(&mut self, what: impl Display, reply: Reply, want: Want) -> Reply {
        let got = reply.errno();
        let ok = match want {
            Want::Errno(e) => got == Some(e),
            Want::Ok => got.is_none(),
            Want::Either => true,
        };
        self.check(what, ok, format!("got {:?}, want {want:?}", reply.msg()));
        reply
    }

    fn send(&mut self, what: impl Display, msg: Tmessage<'_>, want: Want) -> Reply {
        let reply = self.c.call(msg);
        self.expect(what, reply, want)
    }

    /// Fid `fid` walked afresh from the root to `names`.
    fn at(&mut self, fid: u32, names: &[&str]) {
        self.c.clunk(fid);
        let reply = self.c.walk(ROOT, fid, names);
        let whole = matches!(reply.msg(), Rmessage::Walk(w) if w.qids.len() == names.len());
        self.check(
            format!("walk {names:?}"),
            whole,
            format!("{:?}", reply.msg()),
        );
    }

    fn is_linux(&self) -> bool {
        self.dialect == "9P2000.L"
    }

    /// Opens `fid` as the dialect does.
    fn open(&mut self, fid: u32, linux_flags: u32, plan9_mode: u8) -> Reply {
        if self.is_linux() {
            self.c.call(Tmessage::Lopen(Tlopen {
                fid,
                flags: linux_flags,
            }))
        } else {
            self.c.call(Tmessage::Open(Topen {
                fid,
                mode: plan9_mode,
            }))
        }
    }

    /// The node as the guest sees it: its stat, and its entry in a read
    /// of the share's root, with its type, numbers and permissions.
    fn views(&mut self) {
        let (kind, perm) = (self.node.kind, self.node.perm);
        let name = self.node.name.clone();
        self.at(NODE, &[&name]);
        if self.is_linux() {
            let getattr = Tgetattr {
                fid: NODE,
                request_mask: 0x7ff,
            };
            let reply = self.send("Tgetattr", Tmessage::Getattr(getattr), Want::Ok);
            if let Rmessage::Getattr(a) = reply.msg() {
                let got = (a.mode, a.rdev, a.size);
                let want = (kind.file_type | perm, kind.rdev(), 0);
                self.check(
                    "Rgetattr (mode, rdev, size)",
                    got == want,
                    format!("{got:?} != {want:?}"),
                );
            }
        } else {
            let reply = self.send("Tstat", Tmessage::Stat(Tstat { fid: NODE }), Want::Ok);
            if let Rmessage::Stat(st) = reply.msg() {
                self.stat_record("Rstat", &st.stat.0);
            }
        }
        // Its entry in the directory read.
        self.at(DIR, &[]);
        let open = self.open(DIR, O_RDONLY | O_DIRECTORY, OREAD);
        self.expect("open /", open, Want::Ok);
        let mut found = false;
        if self.is_linux() {
            let readdir = Treaddir {
                fid: DIR,
                offset: 0,
                count: 65536,
            };
            let reply = self.send("Treaddir /", Tmessage::Readdir(readdir), Want::Ok);
            let mut d = Decoder::new(reply.data());
            while d.remaining() > 0 {
                let (_, _, d_type, entry): (Qid, u64, u8, Str) = (
                    d.decode().unwrap(),
                    d.decode().unwrap(),
                    d.decode().unwrap(),
                    d.decode().unwrap(),
                );
                if entry.as_bytes() == name.as_bytes() {
                    found = true;
                    if self.node.listed {
                        let want = kind.d_type();
                        self.check(
                            "Treaddir d_type",
                            d_type == want,
                            format!("{d_type} != {want}"),
                        );
                    }
                }
            }
        } else {
            let mut offset = 0;
            loop {
                let read = self.c.read(DIR, offset);
                let reply = self.expect("Tread /", read, Want::Ok);
                if reply.data().is_empty() {
                    break;
                }
                offset += reply.data().len() as u64;
                let mut d = Decoder::new(reply.data());
                while d.remaining() > 0 {
                    let st: Stat = d.decode().unwrap();
                    if st.name.as_bytes() == name.as_bytes() {
                        found = true;
                        self.stat_record("directory record", &st);
                    }
                }
            }
        }
        self.check("directory read", found, "no entry");
        self.c.clunk(DIR);
    }

    /// A stat record of the node, in 9P2000.u with its type and numbers.
    fn stat_record(&mut self, what: &str, st: &Stat<'_>) {
        let (kind, perm) = (self.node.kind, self.node.perm);
        let got = (
            st.mode,
            st.length,
            st.ext.map(|e| e.extension.as_bytes().to_vec()),
        );
        let want = if self.dialect == "9P2000.u" {
            (kind.dm | perm, 0, Some(kind.extension().into_bytes()))
        } else {
            (perm, 0, None)
        };
        self.check(what, got == want, format!("{got:?} != {want:?}"));
    }

    fn linux(&mut self) {
        let name = self.node.name.clone();
        for flags in LOPEN_FLAGS {
            self.at(NODE, &[&name]);
            let open = self.c.call(Tmessage::Lopen(Tlopen { fid: NODE, flags }));
            self.expect(
                format_args!("Tlopen {flags:#o}"),
                open,
                Want::Errno(libc::EPERM),
            );
        }
        // The fid a refused open left: nothing to read, write, list or lock.
        self.no_io_on_unopened_fid();
        let treaddir = Tmessage::Readdir(Treaddir {
            fid: NODE,
            offset: 0,
            count: 4096,
        });
        self.send("Treaddir", treaddir, Want::Errno(libc::EBADF));
        let client_id = Str::from("client");
        let lock = Tmessage::Lock(Tlock {
            fid: NODE,
            lock_type: 1, // F_WRLCK
            flags: 0,
            start: 0,
            length: 0,
            proc_id: 1,
            client_id,
        });
        self.send("Tlock", lock, Want::Errno(libc::EBADF));
        let getlock = Tmessage::Getlock(Tgetlock {
            fid: NODE,
            lock_type: 1,
            start: 0,
            length: 0,
            proc_id: 1,
            client_id,
        });
        self.send("Tgetlock", getlock, Want::Errno(libc::EBADF));
        for datasync in [0, 1] {
            let fsync = Tmessage::Fsync(Tfsync {
                fid: NODE,
                datasync,
            });
            self.send(
                format_args!("Tfsync {datasync}"),
                fsync,
                Want::Errno(libc::EINVAL),
            );
        }
        for size in [0, 5] {
            let setattr = Tmessage::Setattr(Tsetattr {
                fid: NODE,
                valid: 8, // size
                size,
                ..Default::default()
            });
            self.send(
                format_args!("Tsetattr size {size}"),
                setattr,
                Want::Errno(libc::EINVAL),
            );
        }
        let readlink = Tmessage::Readlink(Treadlink { fid: NODE });
        self.send("Treadlink", readlink, Want::Errno(libc::EINVAL));
        let statfs = Tmessage::Statfs(Tstatfs { fid: NODE });
        self.send("Tstatfs", statfs, Want::Ok);
        // Its xattrs, read and written by path.
        for attr in ["", "user.absent"] {
            self.c.clunk(XATTR);
            let walk = Tmessage::Xattrwalk(Txattrwalk {
                fid: NODE,
                newfid: XATTR,
                name: attr.into(),
            });
            self.send(format_args!("Txattrwalk {attr:?}"), walk, Want::Either);
            self.c.clunk(XATTR);
        }
        self.at(TMP, &[&name]);
        let create = Tmessage::Xattrcreate(Txattrcreate {
            fid: TMP,
            name: "user.test".into(),
            attr_size: 1,
            flags: 0,
        });
        self.send("Txattrcreate", create, Want::Either);
        let write = self.c.write(TMP, b"x");
        self.expect("Twrite xattr", write, Want::Either);
        let clunk = self.c.clunk(TMP);
        self.expect("Tclunk xattr", clunk, Want::Either);
        // Tlcreate of the name: open(2) of an existing file without O_EXCL.
        for flags in [
            O_RDONLY,
            O_RDWR | O_TRUNC,
            O_WRONLY | O_NONBLOCK,
            O_RDWR | O_APPEND,
            O_EXCL,
        ] {
            self.at(DIR, &[]);
            let create = Tmessage::Lcreate(Tlcreate {
                fid: DIR,
                name: name.as_str().into(),
                flags,
                mode: 0o644,
                gid: 0,
            });
            let want = if flags & O_EXCL != 0 {
                libc::EEXIST
            } else {
                libc::EPERM
            };
            self.send(
                format_args!("Tlcreate {flags:#o}"),
                create,
                Want::Errno(want),
            );
            self.c.clunk(DIR);
        }
        // A hard link to it, opened.
        let link_name = format!("{name}.link");
        let link = Tmessage::Link(Tlink {
            dfid: ROOT,
            fid: NODE,
            name: link_name.as_str().into(),
        });
        let linked = self.send("Tlink", link, self.node.link).errno().is_none();
        if linked {
            for flags in [O_RDONLY, O_RDWR | O_TRUNC | O_NONBLOCK] {
                self.at(LINK, &[&link_name]);
                let open = self.c.call(Tmessage::Lopen(Tlopen { fid: LINK, flags }));
                self.expect(
                    format_args!("Tlopen of a link {flags:#o}"),
                    open,
                    Want::Errno(libc::EPERM),
                );
            }
            self.c.clunk(LINK);
            let unlink = Tmessage::Unlinkat(Tunlinkat {
                dirfid: ROOT,
                name: link_name.as_str().into(),
                flags: 0,
            });
            self.send("Tunlinkat link", unlink, Want::Ok);
        }
        self.c.clunk(NODE);
    }

    fn no_io_on_unopened_fid(&mut self) {
        let read = self.c.read(NODE, 0);
        self.expect("Tread", read, Want::Errno(libc::EBADF));
        let write = self.c.write(NODE, b"x");
        self.expect("Twrite", write, Want::Errno(libc::EBADF));
    }

    fn plan9(&mut self) {
        let name = self.node.name.clone();
        let unix = self.dialect == "9P2000.u";
        for mode in TOPEN_MODES {
            self.at(NODE, &[&name]);
            let open = self.c.call(Tmessage::Open(Topen { fid: NODE, mode }));
            self.expect(
                format_args!("Topen {mode:#x}"),
                open,
                Want::Errno(libc::EPERM),
            );
        }
        self.no_io_on_unopened_fid();
        // Truncation, and the Twstat that changes nothing (an fsync).
        let wstats = [
            (0, "length 0"),
            (5, "length 5"),
            (u64::MAX, "of nothing (an fsync)"),
        ];
        for (length, what) in wstats {
            let mut stat = Stat {
                length,
                ..Stat::DONT_TOUCH
            };
            stat.ext = unix.then_some(StatExtension::DONT_TOUCH);
            let wstat = Tmessage::Wstat(Twstat {
                fid: NODE,
                stat: StatBlob(stat),
            });
            self.send(
                format_args!("Twstat {what}"),
                wstat,
                Want::Errno(libc::EINVAL),
            );
        }
        // Tcreate of the name: always exclusive, whatever it would make.
        let creates: [(u32, u8, &str); 5] = [
            (0o644, OREAD, ""),
            (0o644, ORDWR | OTRUNC, ""),
            (0o644, OWRITE | ORCLOSE, ""),
            (DMNAMEDPIPE | 0o644, OREAD, ""),
            (DMDEVICE | 0o644, OREAD, "c 1 3"),
        ];
        for (perm, mode, extension) in creates {
            self.at(DIR, &[]);
            let create = Tmessage::Create(Tcreate {
                fid: DIR,
                name: name.as_str().into(),
                perm,
                mode,
                extension: unix.then_some(extension.into()),
            });
            let what = format_args!("Tcreate perm {perm:#o} mode {mode:#x}");
            self.send(what, create, Want::Errno(libc::EEXIST));
            self.c.clunk(DIR);
        }
        if unix {
            // A hard link to it (Tcreate DMLINK), opened.
            let link_name = format!("{name}.link");
            self.at(DIR, &[]);
            let fid = NODE.to_string();
            let create = Tmessage::Create(Tcreate {
                fid: DIR,
                name: link_name.as_str().into(),
                perm: DMLINK | 0o644,
                mode: OREAD,
                extension: Some(fid.as_str().into()),
            });
            let linked = self
                .send("Tcreate DMLINK", create, self.node.link)
                .errno()
                .is_none();
            self.c.clunk(DIR);
            if linked {
                for mode in [OREAD, ORDWR | OTRUNC, ORCLOSE] {
                    self.at(LINK, &[&link_name]);
                    let open = self.c.call(Tmessage::Open(Topen { fid: LINK, mode }));
                    self.expect(
                        format_args!("Topen of a link {mode:#x}"),
                        open,
                        Want::Errno(libc::EPERM),
                    );
                }
                let remove = Tmessage::Remove(Tremove { fid: LINK });
                self.send("Tremove link", remove, Want::Ok);
            }
        }
        self.c.clunk(NODE);
    }

    /// The node's control file: reads its stat, refuses its truncation.
    fn control_file(&mut self) {
        let name = self.node.name.clone();
        let (kind, perm) = (self.node.kind, self.node.perm);
        for ctl in [",ctl", ",ctl,nofollow"] {
            self.at(TMP, &[ctl, &name]);
            let open = self.open(TMP, O_RDWR, ORDWR);
            self.expect(format_args!("open {ctl}"), open, Want::Ok);
            let read = self.c.read(TMP, 0);
            let line = self.expect(format_args!("read {ctl}"), read, Want::Ok);
            let line = String::from_utf8_lossy(line.data()).into_owned();
            let mode = format!(" mode 0{:o} ", kind.file_type | perm);
            let rdev = format!(" rdev {} size 0 ", kind.rdev());
            let ok = line.contains(&mode) && line.contains(&rdev);
            self.check(
                format_args!("{ctl} stat line"),
                ok,
                format!("{line:?} lacks {mode:?} or {rdev:?}"),
            );
            for command in ["truncate 0\n", "truncate 5\n"] {
                let write = self.c.write(TMP, command.as_bytes());
                self.expect(
                    format_args!("{ctl} {command:?}"),
                    write,
                    Want::Errno(libc::EINVAL),
                );
            }
            self.c.clunk(TMP);
        }
    }
}
