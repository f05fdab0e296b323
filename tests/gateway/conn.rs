//! The test's 9P2000.L connection to a gateway: the crate's own client.

use std::path::Path;

use vhost_user_9p::client::Client;
use vhost_user_9p::protocol::*;

pub const MSIZE: u32 = 256 * 1024;
/// 9P2000.L open flags (as Linux's on x86 and arm).
pub const O_RDONLY: u32 = 0;
pub const O_RDWR: u32 = 2;
pub const O_CREAT: u32 = 0o100;
pub const O_DIRECTORY: u32 = 0o200000;

/// A 9P2000.L connection: the crate's client.
pub struct Conn {
    pub client: Client,
    buf: Vec<u8>,
}

pub fn uid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

impl Conn {
    pub fn new(socket: &Path) -> Conn {
        let client = Client::connect(&format!("unix:{}", socket.display())).unwrap();
        let (_, dialect) = client.version(MSIZE, Dialect::Linux).unwrap();
        assert_eq!(dialect, Dialect::Linux);
        Conn {
            client,
            buf: Vec::new(),
        }
    }

    pub fn call(&mut self, request: Tmessage<'_>) -> Result<Rmessage<'_>, i32> {
        self.call_data(request, &[])
    }

    pub fn call_data(&mut self, request: Tmessage<'_>, data: &[u8]) -> Result<Rmessage<'_>, i32> {
        self.client
            .call(&request, data, &mut self.buf)
            .map(|r| r.msg)
            .map_err(|e| e.errno())
    }

    pub fn attach(&mut self, fid: u32) {
        let n_uname = Some(uid());
        let r = self.call(Tmessage::Attach(Tattach {
            fid,
            afid: NOFID,
            uname: "".into(),
            aname: "".into(),
            n_uname,
        }));
        assert!(matches!(r, Ok(Rmessage::Attach(_))), "{r:?}");
    }

    pub fn walk(&mut self, fid: u32, newfid: u32, names: &[&str]) -> Result<usize, i32> {
        let names: Vec<Str> = names.iter().map(|n| Str::from(*n)).collect();
        let names = WalkList::from_slice(&names).unwrap();
        match self.call(Tmessage::Walk(Twalk { fid, newfid, names }))? {
            Rmessage::Walk(r) => Ok(r.qids.len()),
            other => panic!("{other:?}"),
        }
    }

    pub fn lopen(&mut self, fid: u32, flags: u32) -> Result<(), i32> {
        self.call(Tmessage::Lopen(Tlopen { fid, flags }))
            .map(|_| ())
    }

    pub fn lcreate(&mut self, fid: u32, name: &str, mode: u32) -> Result<(), i32> {
        let gid = unsafe { libc::getegid() };
        let request = Tlcreate {
            fid,
            name: name.into(),
            flags: O_RDWR | O_CREAT,
            mode,
            gid,
        };
        self.call(Tmessage::Lcreate(request)).map(|_| ())
    }

    pub fn write(&mut self, fid: u32, offset: u64, data: &[u8]) -> Result<u32, i32> {
        let count = data.len() as u32;
        let request = Tmessage::Write(Twrite { fid, offset, count });
        match self.call_data(request, data)? {
            Rmessage::Write(r) => Ok(r.count),
            other => panic!("{other:?}"),
        }
    }

    pub fn read_all(&mut self, fid: u32) -> Vec<u8> {
        let mut all = Vec::new();
        loop {
            let request = Tread {
                fid,
                offset: all.len() as u64,
                count: 8192,
            };
            let reply = self
                .client
                .call(&Tmessage::Read(request), &[], &mut self.buf)
                .unwrap();
            if reply.data.is_empty() {
                return all;
            }
            all.extend_from_slice(reply.data);
        }
    }

    pub fn clunk(&mut self, fid: u32) -> Result<(), i32> {
        self.call(Tmessage::Clunk(Tclunk { fid })).map(|_| ())
    }

    pub fn getattr(&mut self, fid: u32) -> Result<Rgetattr, i32> {
        let request = Tgetattr {
            fid,
            request_mask: 0x7ff,
        };
        match self.call(Tmessage::Getattr(request))? {
            Rmessage::Getattr(r) => Ok(r),
            other => panic!("{other:?}"),
        }
    }

    /// The names in an opened directory, `.` and `..` left out.
    pub fn readdir_all(&mut self, fid: u32) -> Vec<String> {
        let mut names = Vec::new();
        let mut offset = 0;
        loop {
            let request = Treaddir {
                fid,
                offset,
                count: 4096,
            };
            let Rmessage::Readdir(r) = self.call(Tmessage::Readdir(request)).unwrap() else {
                panic!("not an Rreaddir");
            };
            let mut d = Decoder::new(r.data.0);
            if r.data.0.is_empty() {
                return names;
            }
            while d.remaining() > 0 {
                let _qid: Qid = d.decode().unwrap();
                offset = d.decode().unwrap();
                let _type: u8 = d.decode().unwrap();
                let name: Str = d.decode().unwrap();
                let name = String::from_utf8(name.0.to_vec()).unwrap();
                if name != "." && name != ".." {
                    names.push(name);
                }
            }
        }
    }
}
