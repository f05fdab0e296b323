//! Little-endian 9P wire primitives: a bounds-checked decoder over a byte
//! slice and an encoder appending to a reusable `Vec<u8>`.
//!
//! Every field type implements [`Wire`], so a message is declared once (see
//! `messages.rs`) and gets its encoder and decoder from the declaration.

use std::fmt;

/// A 9P message that could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The message ended before a field did.
    Truncated,
    /// Bytes were left over after the last field.
    TrailingBytes,
    /// A count field is over its protocol limit (e.g. more than 16 walk names).
    TooMany,
    /// The message type is not one this codec knows.
    UnknownType(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => write!(f, "message truncated"),
            DecodeError::TrailingBytes => write!(f, "trailing bytes after message"),
            DecodeError::TooMany => write!(f, "element count over protocol limit"),
            DecodeError::UnknownType(t) => write!(f, "unknown message type {t}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Reads fields from a message body.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Decoder { buf, pos: 0 }
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).ok_or(DecodeError::Truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }

    pub fn decode<T: Wire<'a>>(&mut self) -> Result<T, DecodeError> {
        T::decode(self)
    }
}

/// A field type of the 9P wire format.
pub trait Wire<'a>: Sized {
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(d: &mut Decoder<'a>) -> Result<Self, DecodeError>;
}

macro_rules! wire_int {
    ($($t:ty),*) => {$(
        impl<'a> Wire<'a> for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn decode(d: &mut Decoder<'a>) -> Result<Self, DecodeError> {
                let bytes = d.take(std::mem::size_of::<$t>())?;
                Ok(<$t>::from_le_bytes(bytes.try_into().expect("length checked")))
            }
        }
    )*};
}
wire_int!(u8, u16, u32, u64);

/// A 9P string: `len[2]` then bytes. Names are bytes on Linux; they are kept
/// as bytes and never required to be UTF-8.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Str<'a>(pub &'a [u8]);

impl<'a> Str<'a> {
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

impl fmt::Debug for Str<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.0))
    }
}

impl<'a> From<&'a str> for Str<'a> {
    fn from(s: &'a str) -> Self {
        Str(s.as_bytes())
    }
}

impl<'a> Wire<'a> for Str<'a> {
    fn encode(&self, out: &mut Vec<u8>) {
        // Strings longer than u16::MAX cannot be sent; callers bound them.
        let len = self.0.len().min(u16::MAX as usize);
        (len as u16).encode(out);
        out.extend_from_slice(&self.0[..len]);
    }
    fn decode(d: &mut Decoder<'a>) -> Result<Self, DecodeError> {
        let len = u16::decode(d)? as usize;
        Ok(Str(d.take(len)?))
    }
}

/// Opaque bytes with a `count[4]` prefix (Rreaddir data, Rreadlink-free
/// payloads). Tread/Twrite data is not carried this way: see `messages.rs`.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Data<'a>(pub &'a [u8]);

impl fmt::Debug for Data<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

impl<'a> Wire<'a> for Data<'a> {
    fn encode(&self, out: &mut Vec<u8>) {
        (self.0.len() as u32).encode(out);
        out.extend_from_slice(self.0);
    }
    fn decode(d: &mut Decoder<'a>) -> Result<Self, DecodeError> {
        let len = u32::decode(d)? as usize;
        Ok(Data(d.take(len)?))
    }
}

/// A field that only some dialects send, always last in its message (or
/// stat record): absent when the body ends before it. 9P2000 has no
/// `n_uname` in Tattach and no extension in Tcreate; 9P2000.u and .L do.
impl<'a, T: Wire<'a>> Wire<'a> for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        if let Some(value) = self {
            value.encode(out);
        }
    }
    fn decode(d: &mut Decoder<'a>) -> Result<Self, DecodeError> {
        if d.remaining() == 0 {
            Ok(None)
        } else {
            Ok(Some(T::decode(d)?))
        }
    }
}

/// Qid type bits.
pub const QTDIR: u8 = 0x80;
pub const QTAPPEND: u8 = 0x40;
pub const QTEXCL: u8 = 0x20;
pub const QTAUTH: u8 = 0x08;
pub const QTTMP: u8 = 0x04;
pub const QTSYMLINK: u8 = 0x02;
pub const QTFILE: u8 = 0x00;

/// The server's identity of a file: `type[1] version[4] path[8]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Qid {
    pub ty: u8,
    pub version: u32,
    pub path: u64,
}

impl Qid {
    pub const WIRE_SIZE: usize = 13;
}

impl<'a> Wire<'a> for Qid {
    fn encode(&self, out: &mut Vec<u8>) {
        self.ty.encode(out);
        self.version.encode(out);
        self.path.encode(out);
    }
    fn decode(d: &mut Decoder<'a>) -> Result<Self, DecodeError> {
        Ok(Qid {
            ty: d.decode()?,
            version: d.decode()?,
            path: d.decode()?,
        })
    }
}

/// Most names a Twalk may carry (and qids an Rwalk may return).
pub const MAXWELEM: usize = 16;

/// A bounded list with a `count[2]` prefix, stored inline (no allocation):
/// Twalk names and Rwalk qids.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct WalkList<T: Copy + Default> {
    len: usize,
    items: [T; MAXWELEM],
}

impl<T: Copy + Default> Default for WalkList<T> {
    fn default() -> Self {
        WalkList {
            len: 0,
            items: [T::default(); MAXWELEM],
        }
    }
}

impl<T: Copy + Default> WalkList<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds a list from a slice; `None` if it holds more than MAXWELEM.
    pub fn from_slice(items: &[T]) -> Option<Self> {
        let mut list = Self::default();
        for item in items {
            list.push(*item).ok()?;
        }
        Some(list)
    }

    /// Appends an item; gives it back when the list is full.
    pub fn push(&mut self, item: T) -> Result<(), T> {
        if self.len == MAXWELEM {
            return Err(item);
        }
        self.items[self.len] = item;
        self.len += 1;
        Ok(())
    }

    pub fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl<T: Copy + Default + fmt::Debug> fmt::Debug for WalkList<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.as_slice()).finish()
    }
}

impl<'a, T: Copy + Default + Wire<'a>> Wire<'a> for WalkList<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        (self.len as u16).encode(out);
        for item in self.as_slice() {
            item.encode(out);
        }
    }
    fn decode(d: &mut Decoder<'a>) -> Result<Self, DecodeError> {
        let n = u16::decode(d)? as usize;
        if n > MAXWELEM {
            return Err(DecodeError::TooMany);
        }
        let mut list = Self::default();
        for _ in 0..n {
            let item = T::decode(d)?;
            list.push(item).map_err(|_| DecodeError::TooMany)?;
        }
        Ok(list)
    }
}
