//! Changes through links: making, linking, renaming and removing, and
//! control commands.

use super::*;

impl Checks<'_, '_> {
    /// Making, linking, renaming and removing through links: refused where
    /// the link leads out (or is not followed), done inside the share where
    /// 9P2000 follows it inside.
    pub(super) fn changes(&mut self, tree: &Tree) {
        let plan9 = self.dialect == "9P2000";
        for link in tree.links.iter().filter(|l| l.is_dir()) {
            let names = link.names.clone();
            if plan9 && link.end != End::Dangling {
                continue; // followed inside: below
            }
            self.at(AT, &names);
            if self.linux() {
                self.at(VICTIM, &["f"]);
                let name = Str::from(ESCAPED);
                let requests = [
                    Tmessage::Lcreate(Tlcreate {
                        fid: AT,
                        name,
                        flags: (libc::O_RDWR | libc::O_CREAT) as u32,
                        mode: 0o644,
                        gid: 0,
                    }),
                    Tmessage::Mkdir(Tmkdir {
                        dfid: AT,
                        name,
                        mode: 0o755,
                        gid: 0,
                    }),
                    Tmessage::Symlink(Tsymlink {
                        fid: AT,
                        name,
                        symtgt: "x".into(),
                        gid: 0,
                    }),
                    Tmessage::Mknod(Tmknod {
                        dfid: AT,
                        name,
                        mode: libc::S_IFREG | 0o644,
                        major: 0,
                        minor: 0,
                        gid: 0,
                    }),
                    Tmessage::Link(Tlink {
                        dfid: AT,
                        fid: VICTIM,
                        name,
                    }),
                    Tmessage::Renameat(Trenameat {
                        olddirfid: ROOT,
                        oldname: "f".into(),
                        newdirfid: AT,
                        newname: name,
                    }),
                    Tmessage::Rename(Trename {
                        fid: VICTIM,
                        dfid: AT,
                        name,
                    }),
                    Tmessage::Unlinkat(Tunlinkat {
                        dirfid: AT,
                        name: "secret".into(),
                        flags: 0,
                    }),
                ];
                for msg in requests {
                    self.refused(format_args!("{names:?}: {msg:?}"), msg, None);
                }
            } else {
                let creates: [(u32, u8, &str); 3] = [
                    (0o644, 2, ""),
                    (DMDIR | 0o755, 0, ""),
                    (DMSYMLINK | 0o777, 0, "x"),
                ];
                for (perm, mode, extension) in creates {
                    let create = Tmessage::Create(Tcreate {
                        fid: AT,
                        name: ESCAPED.into(),
                        perm,
                        mode,
                        extension: (self.dialect == "9P2000.u").then_some(extension.into()),
                    });
                    self.refused(format_args!("{names:?}: Tcreate {perm:#o}"), create, None);
                }
            }
        }
        if plan9 {
            // Followed inside: `slash` is the share's root, `in-dir` is `a`.
            for (link, dir) in [("slash", ""), ("in-dir", "a")] {
                let name = format!("made-through-{link}");
                self.at(AT, &[link]);
                let create = Tmessage::Create(Tcreate {
                    fid: AT,
                    name: name.as_str().into(),
                    perm: 0o644,
                    mode: 2,
                    extension: None,
                });
                self.succeeds(format_args!("Tcreate through {link}"), create);
                let made = tree.share.join(dir).join(&name).is_file();
                self.check(format_args!("{name} in the share's {dir:?}"), made, ());
            }
        }
        // Truncation, modes, owners and times of links to files out of
        // the share (not followed, or followed to nothing).
        let out_files = tree
            .links
            .iter()
            .filter(|l| !l.is_dir() && (!plan9 || l.end == End::Dangling));
        for link in out_files {
            let names = link.names.clone();
            self.at(AT, &names);
            if self.linux() {
                let changes = [(8, 0o777), (1, 0o777)]; // size 0, mode
                for (valid, mode) in changes {
                    let setattr = Tmessage::Setattr(Tsetattr {
                        fid: AT,
                        valid,
                        mode,
                        ..Default::default()
                    });
                    self.refused(
                        format_args!("{names:?}: Tsetattr {valid:#x}"),
                        setattr,
                        None,
                    );
                }
                // The link's own owner and times: no matter.
                let setattr = Tmessage::Setattr(Tsetattr {
                    fid: AT,
                    valid: 2 | 4 | 16 | 32,
                    uid: 1,
                    gid: 1,
                    ..Default::default()
                });
                self.c.call(setattr);
            } else {
                let changes = [("length 0", 0, u32::MAX), ("mode 0777", u64::MAX, 0o777)];
                for (what, length, mode) in changes {
                    let stat = Stat {
                        length,
                        mode,
                        ext: (self.dialect == "9P2000.u").then_some(StatExtension::DONT_TOUCH),
                        ..Stat::DONT_TOUCH
                    };
                    let wstat = Tmessage::Wstat(Twstat {
                        fid: AT,
                        stat: StatBlob(stat),
                    });
                    self.refused(format_args!("{names:?}: Twstat {what}"), wstat, None);
                }
            }
        }
        self.control_commands(tree);
        // A file renamed over links out: the link goes, not its target.
        self.at(VICTIM, &["victim"]);
        if self.linux() {
            let rename = Tmessage::Renameat(Trenameat {
                olddirfid: ROOT,
                oldname: "victim".into(),
                newdirfid: ROOT,
                newname: "out-file".into(),
            });
            self.succeeds("Trenameat victim out-file", rename);
        } else {
            let stat = Stat {
                name: "out-file".into(),
                ext: (self.dialect == "9P2000.u").then_some(StatExtension::DONT_TOUCH),
                ..Stat::DONT_TOUCH
            };
            let wstat = Tmessage::Wstat(Twstat {
                fid: VICTIM,
                stat: StatBlob(stat),
            });
            self.succeeds("Twstat name victim -> out-file", wstat);
        }
        let renamed = std::fs::read(tree.share.join("out-file")).ok();
        self.check(
            "out-file after the rename",
            renamed.as_deref() == Some(b"victim"),
            renamed,
        );
        if plan9 {
            // Removing a followed link removes the link.
            self.at(AT, &["out-dir-rel"]);
            self.succeeds("Tremove out-dir-rel", Tmessage::Remove(Tremove { fid: AT }));
            let gone = std::fs::symlink_metadata(tree.share.join("out-dir-rel")).is_err();
            self.check("out-dir-rel removed", gone, ());
        }
        for fid in [AT, DIR, CTL, VICTIM] {
            self.c.clunk(fid);
        }
    }

    /// Commands to control files naming paths through links: refused where
    /// they lead out, done inside where a link in the middle of a path is
    /// followed inside the share.
    pub(super) fn control_commands(&mut self, tree: &Tree) {
        let refused = [
            format!("mknod out-dir/{ESCAPED} f 600 0 0"),
            format!("mknod out-dir-rel/{ESCAPED} f 600 0 0"),
            format!("mknod out-dir/sub/{ESCAPED} f 600 0 0"),
            format!("mknod slash/{ESCAPED} f 600 0 0"),
            format!("mknod a/b/up/{ESCAPED} f 600 0 0"),
            format!("mknod passwd/{ESCAPED} f 600 0 0"),
            format!("symlink x out-dir/{ESCAPED}"),
            format!("link f out-dir/{ESCAPED}"),
            format!("rename f out-dir/{ESCAPED}"),
            format!("rename f out-dir-rel/{ESCAPED}"),
        ];
        for command in &refused {
            let write = self.ctl_write(&[",ctl", ","], command);
            self.check(format_args!("{command:?}"), write.is_some(), "done");
        }
        // `slash/etc` is the share's etc.
        let command = format!("mknod slash/etc/{ESCAPED} f 600 0 0");
        if self.ctl_write(&[",ctl", ","], &command).is_none() {
            let made = tree.share.join("etc").join(ESCAPED).is_file();
            self.check(
                format_args!("{command:?} made in the share's etc"),
                made,
                (),
            );
        }
        // A link's control file: its own attributes at most.
        for link in ["out-file", "out-dir", "out-dir-rel"] {
            for command in ["truncate 0", "chmod 777", "chown 1 1", "utimes 0 0 0 0"] {
                self.ctl_write(&[",ctl", link], command);
            }
        }
        for command in ["truncate 0", "chmod 777", "chown 1 1", "utimes 0 0 0 0"] {
            self.ctl_write(&["a", "b", ",ctl", "up"], command);
        }
    }

    /// Writes `command` to the control file at `names`: its errno.
    pub(super) fn ctl_write(&mut self, names: &[&str], command: &str) -> Option<i32> {
        self.at(CTL, names);
        let open = self.open(CTL, libc::O_WRONLY as u32, 1);
        self.check(
            format_args!("open {names:?}"),
            open.errno().is_none(),
            open.msg(),
        );
        let errno = self.c.write(CTL, format!("{command}\n").as_bytes()).errno();
        self.c.clunk(CTL);
        errno
    }
}
