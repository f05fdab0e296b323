//! Where `--trace` lines go: stderr, one write per line.

use std::fmt::{Display, Write as _};
use std::io::Write as _;

/// Writes one `--trace` line to stderr in one write (stderr is unbuffered:
/// `eprintln!` writes each piece of the line on its own), formatted in a
/// buffer the thread keeps.
pub fn write_line(line: impl Display) {
    thread_local! {
        static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    LINE.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.clear();
        let _ = writeln!(buf, "{line}");
        let _ = std::io::stderr().write_all(buf.as_bytes());
    });
}
