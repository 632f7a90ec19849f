//! The echo loop of the two blocking servers (`echo_threads`, `echo_pool`),
//! included by both with `#[path]` so that they run the very same loop.

use std::io::{self, Read, Write};
use std::net::TcpStream;

/// Echoes until the client closes its write side; returns the bytes echoed.
///
/// Blocking I/O: `read` parks this thread until data arrives, and `write_all`
/// parks it until the kernel has taken every byte. Returning drops the stream,
/// which closes the connection.
pub fn echo(mut stream: TcpStream, buf: &mut [u8]) -> io::Result<u64> {
    stream.set_nodelay(true)?;
    let mut echoed = 0u64;
    loop {
        let n = match stream.read(buf) {
            Ok(0) => return Ok(echoed), // the client shut down its write side
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        stream.write_all(&buf[..n])?;
        echoed += n as u64;
    }
}
