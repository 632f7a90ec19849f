//! `UnixListener`, `UnixStream` (and its split halves) and `UnixDatagram`:
//! the reactor's pattern on a socket bound to a path. Each test works in a
//! fresh directory of its own under the system's temporary directory,
//! removed when the test ends.

mod util;

use std::cell::Cell;
use std::io::{ErrorKind, IoSlice, Write};
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures::io::{AsyncReadExt, AsyncWriteExt};

use coop::net::{
    OwnedReadHalf, OwnedWriteHalf, ReadHalf, ReuniteError, UnixDatagram, UnixListener, UnixStream,
    WriteHalf,
};
use coop::runtime::TASK_BUDGET;
use util::{echo, with_deadline};

/// A directory of the test's own, removed (with the socket files in it)
/// on drop, so a failing test cleans up too: named by process id and a
/// counter, so parallel tests and earlier runs never meet.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("coop-unix-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir).expect("create the test's directory");
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Accepts forever, echoing each connection in a task of its own.
async fn serve_echo(listener: UnixListener) {
    loop {
        let (stream, _) = listener.accept().await.expect("accept");
        coop::spawn(echo(stream));
    }
}

#[test]
fn a_client_gets_its_bytes_echoed_through_a_listener_on_a_path() {
    with_deadline(10, || {
        let dir = TempDir::new();
        let path = dir.path("echo.sock");
        coop::block_on(async move {
            let listener = UnixListener::bind(&path).unwrap();
            assert_eq!(listener.local_addr().unwrap().as_pathname(), Some(&*path));
            coop::spawn(serve_echo(listener));

            let mut client = UnixStream::connect(&path).await.unwrap();
            assert_eq!(client.peer_addr().unwrap().as_pathname(), Some(&*path));
            assert!(client.local_addr().unwrap().is_unnamed());
            // More than one socket buffer's worth, so both sides wait on
            // the reactor at least once.
            let sent: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
            let mut back = vec![0; sent.len()];
            let (mut writer, mut reader) = (&client, &client);
            let (wrote, read) = futures::join!(
                async {
                    writer.write_all(&sent).await?;
                    writer.close().await
                },
                reader.read_exact(&mut back),
            );
            wrote.unwrap();
            read.unwrap();
            assert!(back == sent, "the echo differs");
            // The server saw our close and closed too.
            assert_eq!(client.read(&mut [0; 8]).await.unwrap(), 0);
        });
        // The socket file outlives the listener, as in std and tokio.
        assert!(dir.path("echo.sock").exists());
    });
}

#[test]
fn a_pair_talks_both_ways_with_no_path() {
    with_deadline(10, || {
        coop::block_on(async {
            let (mut a, mut b) = UnixStream::pair().unwrap();
            assert!(a.peer_addr().unwrap().is_unnamed());
            // The task hands `b` back rather than dropping it: `a`'s read
            // must be woken by the reply, not by a hang-up.
            let reader = coop::spawn(async move {
                let mut got = [0; 5];
                b.read_exact(&mut got).await.unwrap();
                b.write_all(b"world").await.unwrap();
                (got, b)
            });
            a.write_all(b"hello").await.unwrap();
            let mut reply = [0; 5];
            a.read_exact(&mut reply).await.unwrap();
            let (got, _b) = reader.await.unwrap();
            assert_eq!(&got, b"hello");
            assert_eq!(&reply, b"world");
        });
    });
}

#[test]
fn a_read_returns_zero_once_the_peer_has_closed() {
    with_deadline(10, || {
        coop::block_on(async {
            let (mut a, b) = UnixStream::pair().unwrap();
            let mut buf = [0; 16];
            // Waiting first, with nothing sent: the close must wake us.
            let closer = coop::spawn(async move {
                coop::time::sleep(std::time::Duration::from_millis(20)).await;
                (&b).write_all(b"last").await.unwrap();
                drop(b);
            });
            let mut got = Vec::new();
            loop {
                let n = a.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            assert_eq!(got, b"last");
            closer.await.unwrap();
        });
    });
}

/// Sends `bytes` on `socket` with one descriptor attached (`SCM_RIGHTS`),
/// the way a peer passes a file over a Unix socket. The control message is
/// written out by hand (Linux's 64-bit `cmsghdr`: a `usize` length, then
/// level and type as `i32`s, then the descriptor, padded to 8 bytes).
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn send_with_a_descriptor(socket: &std::os::unix::net::UnixStream, bytes: &[u8]) {
    use std::os::fd::AsRawFd;
    const SOL_SOCKET: i32 = 1;
    const SCM_RIGHTS: i32 = 1;
    let mut control = Vec::new();
    control.extend_from_slice(&(16usize + 4).to_ne_bytes()); // CMSG_LEN(4)
    control.extend_from_slice(&SOL_SOCKET.to_ne_bytes());
    control.extend_from_slice(&SCM_RIGHTS.to_ne_bytes());
    control.extend_from_slice(&socket.as_raw_fd().to_ne_bytes());
    control.extend_from_slice(&[0; 4]); // CMSG_SPACE(4) is 24
    let bufs = [IoSlice::new(bytes)];
    let msg = socket2::MsgHdr::new()
        .with_buffers(&bufs)
        .with_control(&control);
    let sent = socket2::SockRef::from(socket).sendmsg(&msg, 0).unwrap();
    assert_eq!(sent, bytes.len());
}

/// A read that comes to bytes which carried a descriptor stops after them
/// (the kernel never joins them with the bytes behind), so a short read
/// on a Unix stream does not always mean an empty queue. A reader that
/// forgot readiness after it would wait for an edge that never comes: the
/// bytes behind are queued already.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
#[test]
fn a_read_stopped_short_by_a_passed_descriptor_still_gets_the_bytes_behind_it() {
    with_deadline(10, || {
        coop::block_on(async {
            let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
            let mut ours = UnixStream::from_std(ours).unwrap();
            let mut buf = [0; 16];
            // Nothing queued yet: the next read waits for an edge, as a
            // reader of a live connection does.
            assert_eq!(
                ours.try_read(&mut buf).unwrap_err().kind(),
                ErrorKind::WouldBlock
            );
            send_with_a_descriptor(&theirs, b"ab");
            (&theirs).write_all(b"cde").unwrap();
            // The first read stops after the descriptor's bytes, with three
            // more queued (the descriptor itself is closed by the kernel:
            // a plain read takes no control messages).
            assert_eq!(ours.read(&mut buf).await.unwrap(), 2);
            assert_eq!(&buf[..2], b"ab");
            // The peer sends nothing more and keeps the connection open.
            let read = coop::time::timeout(Duration::from_secs(2), ours.read(&mut buf)).await;
            let n = read
                .expect("the read waited for an edge that never comes")
                .unwrap();
            assert_eq!(&buf[..n], b"cde");
            drop(theirs);
        });
    });
}

/// A Unix difference: a peer that closes with bytes it never read resets
/// the connection, and this side reads `ECONNRESET`, not end of file,
/// once it has read what was sent.
#[test]
fn a_peer_that_closes_with_bytes_unread_leaves_a_reset() {
    with_deadline(10, || {
        coop::block_on(async {
            let (mut a, mut b) = UnixStream::pair().unwrap();
            b.write_all(b"sent").await.unwrap();
            a.write_all(b"never read").await.unwrap();
            drop(b);
            let mut got = [0; 4];
            a.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"sent");
            let err = a.read(&mut got).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
        });
    });
}

#[test]
fn close_shuts_the_write_side_and_the_read_side_still_works() {
    with_deadline(10, || {
        coop::block_on(async {
            let (mut a, mut b) = UnixStream::pair().unwrap();
            a.write_all(b"question").await.unwrap();
            a.close().await.unwrap();
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"question");
            b.write_all(b"answer").await.unwrap();
            let mut reply = [0; 6];
            a.read_exact(&mut reply).await.unwrap();
            assert_eq!(&reply, b"answer");
            // A second close, or a shutdown, after the first is harmless.
            a.close().await.unwrap();
            b.shutdown(Shutdown::Both).unwrap();
        });
    });
}

/// A write to a stream whose peer has gone is `EPIPE`; the kernel would
/// also raise `SIGPIPE`, which kills a process that does not ignore it
/// (Rust's `main` ignores it, a C host may not). A handler that only sets
/// a flag makes the signal visible without killing the test.
#[test]
fn a_write_to_a_closed_peer_is_broken_pipe_not_a_sigpipe() {
    let sigpipe = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGPIPE, sigpipe.clone()).unwrap();
    with_deadline(10, || {
        coop::block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            drop(b);
            let slices = [IoSlice::new(b"ab"), IoSlice::new(b"cd")];
            let results = [
                (&a).write(b"hello").await,
                (&a).write_vectored(&slices).await,
                a.try_write(b"hello"),
            ];
            for result in results {
                assert!(
                    matches!(&result, Err(e) if e.kind() == ErrorKind::BrokenPipe),
                    "{result:?}"
                );
            }
        });
    });
    assert!(!sigpipe.load(Ordering::SeqCst), "a write raised SIGPIPE");
}

#[test]
fn try_read_on_an_empty_stream_would_block_and_readable_waits_for_data() {
    with_deadline(10, || {
        coop::block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            let mut buf = [0; 8];
            let err = a.try_read(&mut buf).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::WouldBlock);
            b.writable().await.unwrap();
            assert_eq!(b.try_write(b"hi").unwrap(), 2);
            let n = loop {
                a.readable().await.unwrap();
                match a.try_read(&mut buf) {
                    Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                    result => break result.unwrap(),
                }
            };
            assert_eq!(&buf[..n], b"hi");
            assert_eq!(
                a.try_read(&mut buf).unwrap_err().kind(),
                ErrorKind::WouldBlock
            );
        });
    });
}

#[test]
fn one_loop_serves_two_hundred_concurrent_clients() {
    const CLIENTS: usize = 200;
    with_deadline(20, || {
        let dir = TempDir::new();
        let path = dir.path("many.sock");
        coop::block_on(async move {
            let listener = UnixListener::bind(&path).unwrap();
            coop::spawn(serve_echo(listener));
            let clients: Vec<_> = (0..CLIENTS)
                .map(|i| {
                    let path = path.clone();
                    coop::spawn(async move {
                        let mut stream = UnixStream::connect(&path).await.unwrap();
                        let msg = format!("client {i} says hello").repeat(100);
                        stream.write_all(msg.as_bytes()).await.unwrap();
                        stream.close().await.unwrap();
                        let mut back = String::new();
                        stream.read_to_string(&mut back).await.unwrap();
                        back == msg
                    })
                })
                .collect();
            for (i, client) in clients.into_iter().enumerate() {
                assert!(client.await.unwrap(), "client {i} got a wrong echo");
            }
        });
    });
}

#[test]
fn connect_to_a_missing_path_is_not_found() {
    with_deadline(10, || {
        let dir = TempDir::new();
        let path = dir.path("nobody.sock");
        coop::block_on(async move {
            let err = UnixStream::connect(&path).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        });
    });
}

/// A Unix `connect(2)` does not wait: with the listener's backlog full it
/// fails with `EAGAIN` at once, and no event would say when to retry, so
/// `connect` returns that `WouldBlock` (as tokio's does).
#[test]
fn connect_to_a_full_backlog_is_would_block_not_a_hang() {
    with_deadline(10, || {
        let dir = TempDir::new();
        let path = dir.path("full.sock");
        coop::block_on(async move {
            let socket =
                socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
            socket
                .bind(&socket2::SockAddr::unix(&path).unwrap())
                .unwrap();
            socket.listen(1).unwrap();
            let _listener =
                UnixListener::from_std(std::os::unix::net::UnixListener::from(socket)).unwrap();
            let mut queued = Vec::new();
            let err = loop {
                match UnixStream::connect(&path).await {
                    Ok(stream) => queued.push(stream),
                    Err(e) => break e,
                }
                assert!(queued.len() < 100, "the backlog never filled");
            };
            assert_eq!(err.kind(), ErrorKind::WouldBlock, "{err}");
        });
    });
}

#[test]
fn bind_to_an_existing_path_is_addr_in_use_even_after_the_listener_is_gone() {
    with_deadline(10, || {
        let dir = TempDir::new();
        let path = dir.path("taken.sock");
        coop::block_on(async move {
            let first = UnixListener::bind(&path).unwrap();
            let err = UnixListener::bind(&path).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
            // The file stays when the listener goes: still in use.
            drop(first);
            let err = UnixListener::bind(&path).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::AddrInUse, "{err}");
            // Removing the file frees the name.
            std::fs::remove_file(&path).unwrap();
            UnixListener::bind(&path).unwrap();
        });
    });
}

#[test]
fn outside_a_runtime_the_constructors_are_errors_that_leave_nothing_behind() {
    with_deadline(10, || {
        let dir = TempDir::new();
        let path = dir.path("outside.sock");
        let no_runtime = |e: std::io::Error| e.to_string().contains("inside a coop runtime");

        assert!(no_runtime(UnixListener::bind(&path).unwrap_err()));
        assert!(!path.exists(), "bind made a socket file before failing");
        assert!(no_runtime(UnixStream::pair().unwrap_err()));

        // A connect polled outside: the server sees no connection.
        let std_listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let connect = futures::executor::block_on(UnixStream::connect(&path));
        assert!(no_runtime(connect.unwrap_err()));
        assert!(
            matches!(std_listener.accept(), Err(e) if e.kind() == ErrorKind::WouldBlock),
            "a connect outside the runtime reached the listener"
        );
        let std_stream = std::os::unix::net::UnixStream::connect(&path).unwrap();
        assert!(no_runtime(UnixStream::from_std(std_stream).unwrap_err()));
        // A listener made inside a runtime and polled outside it: accept
        // fails before accept(2) takes the connection.
        let listener = coop::block_on(async { UnixListener::from_std(std_listener) }).unwrap();
        assert!(no_runtime(
            futures::executor::block_on(listener.accept()).unwrap_err()
        ));
        // ... and the failed accept left the connection queued: the same
        // socket, reached through its descriptor, still has it.
        let fd = listener.as_fd().try_clone_to_owned().unwrap();
        let (_stream, _) = std::os::unix::net::UnixListener::from(fd)
            .accept()
            .expect("the connection is still queued");
    });
}

/// A connected pair whose reading end has `ops` chunks of 64 bytes queued.
fn stream_with_data_waiting(ops: usize) -> (UnixStream, std::os::unix::net::UnixStream) {
    let (ours, mut theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    theirs.write_all(&vec![7; ops * 64]).unwrap();
    (UnixStream::from_std(ours).unwrap(), theirs)
}

/// The cooperative budget applies as to any socket: a reader that never
/// has to wait gives the loop back after `TASK_BUDGET` reads.
#[test]
fn a_reader_whose_data_is_all_there_lets_the_next_task_run() {
    let ops = 4 * usize::from(TASK_BUDGET);
    with_deadline(10, move || {
        coop::block_on(async move {
            let (mut stream, _theirs) = stream_with_data_waiting(ops);
            let reads = Rc::new(Cell::new(0));
            let count = reads.clone();
            let hog = coop::spawn(async move {
                let mut chunk = [0; 64];
                for _ in 0..ops {
                    stream.read_exact(&mut chunk).await.unwrap();
                    count.set(count.get() + 1);
                }
            });
            let look = reads.clone();
            let seen = coop::spawn(async move { look.get() }).await.unwrap();
            hog.await.unwrap();
            assert_eq!(reads.get(), ops);
            assert_eq!(
                seen,
                usize::from(TASK_BUDGET),
                "the next task ran after {seen} reads, not after one budget"
            );
        });
    });
}

// ---- split halves -------------------------------------------------------

/// Borrowed halves of one stream read and write at once, in one task:
/// more than a socket buffer's worth, so each half waits on the reactor
/// while the other works.
#[test]
fn borrowed_halves_of_a_unix_stream_read_and_write_at_once() {
    with_deadline(10, || {
        coop::block_on(async {
            let (a, b) = UnixStream::pair().unwrap();
            coop::spawn(echo(b));
            let (mut rd, mut wr): (ReadHalf<'_, UnixStream>, WriteHalf<'_, UnixStream>) =
                UnixStream::split(&a);
            assert!(rd.as_ref().peer_addr().unwrap().is_unnamed());
            let sent: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
            let mut back = vec![0; sent.len()];
            let (wrote, read) = futures::join!(wr.write_all(&sent), rd.read_exact(&mut back));
            wrote.unwrap();
            read.unwrap();
            assert!(back == sent, "the echo differs");
        });
    });
}

/// Owned halves move into two tasks; dropping the write half shuts the
/// write direction down, so the peer reads end of file after the data,
/// while the read half still reads the peer's answer.
#[test]
fn dropping_the_owned_write_half_of_a_unix_stream_gives_the_peer_eof() {
    with_deadline(10, || {
        coop::block_on(async {
            let (a, mut b) = UnixStream::pair().unwrap();
            let (mut rd, mut wr): (OwnedReadHalf<UnixStream>, OwnedWriteHalf<UnixStream>) =
                a.into_split();
            let writer = coop::spawn(async move {
                wr.write_all(b"question").await.unwrap();
                // `wr` is dropped here: the peer must see end of file.
            });
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, b"question");
            writer.await.unwrap();
            b.write_all(b"answer").await.unwrap();
            let reader = coop::spawn(async move {
                let mut reply = [0; 6];
                rd.read_exact(&mut reply).await.unwrap();
                reply
            });
            assert_eq!(&reader.await.unwrap(), b"answer");
        });
    });
}

/// Reunited halves are the stream again, not shut down by the parting;
/// halves of two streams are refused and handed back.
#[test]
fn owned_halves_of_a_unix_stream_reunite_and_refuse_a_stranger() {
    with_deadline(10, || {
        coop::block_on(async {
            let (a, mut peer) = UnixStream::pair().unwrap();
            let (rd, wr) = a.into_split();
            let (_c, _other_peer) = UnixStream::pair().unwrap();
            let (_other_rd, other_wr) = _c.into_split();
            let err: ReuniteError<UnixStream> = rd.reunite(other_wr).unwrap_err();
            assert!(
                err.to_string().contains("not from the same stream"),
                "{err}"
            );
            let ReuniteError(rd, _other_wr) = err;
            let mut a: UnixStream = wr.reunite(rd).expect("halves of one stream");
            a.write_all(b"whole").await.unwrap();
            let mut got = [0; 5];
            peer.read_exact(&mut got).await.unwrap();
            assert_eq!(&got, b"whole");
            // No shutdown when the halves parted: the peer has nothing to
            // read yet, rather than end of file.
            assert_eq!(
                peer.try_read(&mut got).unwrap_err().kind(),
                ErrorKind::WouldBlock
            );
            drop(a);
            assert_eq!(peer.read(&mut got).await.unwrap(), 0);
        });
    });
}

// ---- UnixDatagram -------------------------------------------------------

#[test]
fn a_datagram_pair_carries_whole_messages_both_ways() {
    with_deadline(10, || {
        coop::block_on(async {
            let (a, b) = UnixDatagram::pair().unwrap();
            assert!(a.peer_addr().unwrap().is_unnamed());
            assert_eq!(a.send(b"one").await.unwrap(), 3);
            assert_eq!(a.send(b"two!").await.unwrap(), 4);
            let mut buf = [0; 16];
            // One datagram per receive, whole, in order.
            let n = b.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"one");
            let n = b.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"two!");
            b.send(b"back").await.unwrap();
            let (n, from) = a.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"back");
            assert!(from.is_unnamed());
        });
    });
}

#[test]
fn datagrams_sent_to_a_path_come_from_the_senders_path() {
    with_deadline(10, || {
        let dir = TempDir::new();
        let (server_path, client_path) = (dir.path("server.sock"), dir.path("client.sock"));
        coop::block_on(async move {
            let server = UnixDatagram::bind(&server_path).unwrap();
            assert_eq!(
                server.local_addr().unwrap().as_pathname(),
                Some(&*server_path)
            );
            let client = UnixDatagram::bind(&client_path).unwrap();
            client.send_to(b"ping", &server_path).await.unwrap();
            let mut buf = [0; 16];
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"ping");
            let from = from.as_pathname().expect("the client bound a path");
            assert_eq!(from, client_path);
            server.send_to(b"pong", from).await.unwrap();
            let (n, _) = client.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"pong");
            // An unbound socket can send; its sender has no name.
            let anonymous = UnixDatagram::unbound().unwrap();
            assert_eq!(anonymous.try_send_to(b"hi", &server_path).unwrap(), 2);
            let (_, from) = server.recv_from(&mut buf).await.unwrap();
            assert!(from.is_unnamed());
        });
        // Like a listener's, the socket file stays.
        assert!(dir.path("server.sock").exists());
    });
}

/// `connect` sets the peer for `send` and `recv`, and `recv` skips a
/// stranger's datagram that was queued before `connect` (the kernel keeps
/// it, and `recv(2)` would hand it over as if the peer had sent it).
#[test]
fn a_connected_datagram_socket_sends_and_receives_only_its_peer() {
    with_deadline(10, || {
        let dir = TempDir::new();
        let (a_path, b_path) = (dir.path("a.sock"), dir.path("b.sock"));
        coop::block_on(async move {
            let a = UnixDatagram::bind(&a_path).unwrap();
            let b = UnixDatagram::bind(&b_path).unwrap();
            let stranger = UnixDatagram::bind(dir.path("stranger.sock")).unwrap();
            assert_eq!(
                a.send(b"x").await.unwrap_err().kind(),
                ErrorKind::NotConnected
            );
            stranger.send_to(b"stray", &a_path).await.unwrap();
            a.connect(&b_path).unwrap();
            assert_eq!(a.peer_addr().unwrap().as_pathname(), Some(&*b_path));
            b.connect(&a_path).unwrap();
            b.send(b"from b").await.unwrap();
            let mut buf = [0; 16];
            let n = a.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"from b");
            a.send(b"from a").await.unwrap();
            let n = b.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"from a");
            // The stray was consumed, not left for `recv_from`.
            assert_eq!(
                a.try_recv_from(&mut buf).unwrap_err().kind(),
                ErrorKind::WouldBlock
            );
        });
    });
}

/// A receive with nothing queued waits on the reactor, and the datagram
/// another task sends later wakes it.
#[test]
fn a_datagram_recv_waits_until_another_task_sends() {
    with_deadline(10, || {
        coop::block_on(async {
            let (a, b) = UnixDatagram::pair().unwrap();
            let sent = Rc::new(Cell::new(false));
            let flag = sent.clone();
            let sender = coop::spawn(async move {
                coop::time::sleep(std::time::Duration::from_millis(20)).await;
                flag.set(true);
                b.send(b"later").await.unwrap();
                b
            });
            let mut buf = [0; 16];
            let n = a.recv(&mut buf).await.unwrap();
            assert!(sent.get(), "recv returned before the datagram was sent");
            assert_eq!(&buf[..n], b"later");
            let _b = sender.await.unwrap();
        });
    });
}

#[test]
fn try_recv_on_an_empty_datagram_socket_would_block_and_readable_waits() {
    with_deadline(10, || {
        coop::block_on(async {
            let (a, b) = UnixDatagram::pair().unwrap();
            let mut buf = [0; 16];
            assert_eq!(
                a.try_recv(&mut buf).unwrap_err().kind(),
                ErrorKind::WouldBlock
            );
            assert_eq!(
                a.try_recv_from(&mut buf).unwrap_err().kind(),
                ErrorKind::WouldBlock
            );
            b.writable().await.unwrap();
            assert_eq!(b.try_send(b"hi").unwrap(), 2);
            let n = loop {
                a.readable().await.unwrap();
                match a.try_recv(&mut buf) {
                    Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                    result => break result.unwrap(),
                }
            };
            assert_eq!(&buf[..n], b"hi");
            assert_eq!(
                a.try_recv(&mut buf).unwrap_err().kind(),
                ErrorKind::WouldBlock
            );
        });
    });
}

#[test]
fn datagram_shutdown_and_the_descriptor() {
    with_deadline(10, || {
        coop::block_on(async {
            let (a, b) = UnixDatagram::pair().unwrap();
            a.shutdown(Shutdown::Write).unwrap();
            assert_eq!(
                a.send(b"x").await.unwrap_err().kind(),
                ErrorKind::BrokenPipe
            );
            assert!(a.take_error().unwrap().is_none());
            // The descriptor is the socket's own: a datagram sent through
            // a std clone of it arrives.
            let fd = b.as_fd().try_clone_to_owned().unwrap();
            std::os::unix::net::UnixDatagram::from(fd)
                .send(b"fd")
                .unwrap();
            let mut buf = [0; 4];
            let n = a.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"fd");
            // After `Shutdown::Read` the peer's sends fail, and a receive
            // is no end of file: it waits, without spinning the loop.
            a.shutdown(Shutdown::Read).unwrap();
            assert_eq!(
                b.send(b"x").await.unwrap_err().kind(),
                ErrorKind::BrokenPipe
            );
            let polls = Cell::new(0);
            let recv = std::future::poll_fn(|cx| {
                polls.set(polls.get() + 1);
                a.poll_recv(cx, &mut buf)
            });
            let waited = coop::time::timeout(std::time::Duration::from_millis(50), recv).await;
            assert!(waited.is_err(), "{waited:?}");
            assert!(
                polls.get() < 5,
                "the receive was polled {} times",
                polls.get()
            );
        });
    });
}

#[test]
fn outside_a_runtime_a_datagram_bind_fails_and_leaves_no_file() {
    with_deadline(10, || {
        let dir = TempDir::new();
        let path = dir.path("outside.sock");
        let no_runtime = |e: std::io::Error| e.to_string().contains("inside a coop runtime");
        assert!(no_runtime(UnixDatagram::bind(&path).unwrap_err()));
        assert!(!path.exists(), "bind made a socket file before failing");
        assert!(no_runtime(UnixDatagram::pair().unwrap_err()));
        assert!(no_runtime(UnixDatagram::unbound().unwrap_err()));
    });
}

/// Unlike UDP, a full receiver makes a connected sender wait rather than
/// lose the datagram, and the receiver's reads make room and wake it. (A
/// pair's sender is limited by its own send buffer, and Linux calls that
/// writable again only once the receiver has read most of it: so the
/// reader here reads everything.)
#[test]
fn a_send_to_a_full_datagram_receiver_waits_until_it_reads() {
    with_deadline(10, || {
        coop::block_on(async {
            let (a, b) = UnixDatagram::pair().unwrap();
            let mut queued = 0;
            while a.try_send(b"fill").is_ok() {
                queued += 1;
                assert!(queued < 100_000, "the receiver never filled");
            }
            let reading = Rc::new(Cell::new(false));
            let flag = reading.clone();
            let reader = coop::spawn(async move {
                coop::time::sleep(std::time::Duration::from_millis(20)).await;
                flag.set(true);
                // Nothing was lost: the whole fill, then the last one.
                let mut buf = [0; 8];
                for _ in 0..queued {
                    let n = b.recv(&mut buf).await.unwrap();
                    assert_eq!(&buf[..n], b"fill");
                }
                let n = b.recv(&mut buf).await.unwrap();
                assert_eq!(&buf[..n], b"last");
            });
            a.send(b"last").await.unwrap();
            assert!(reading.get(), "the send did not wait for room");
            reader.await.unwrap();
        });
    });
}

/// When the connected peer is gone, Linux disconnects the socket at its
/// next `send` (`ConnectionRefused`): from then on the kernel takes
/// datagrams from anyone, and `peer_addr` says `NotConnected`. `recv` must
/// follow the kernel, not keep filtering by the peer it had, which would
/// discard every datagram that now comes (and wait forever).
#[test]
fn a_datagram_socket_whose_peer_died_receives_from_anyone_once_the_kernel_disconnects_it() {
    with_deadline(10, || {
        let dir = TempDir::new();
        let (a_path, b_path) = (dir.path("a.sock"), dir.path("b.sock"));
        coop::block_on(async move {
            let a = UnixDatagram::bind(&a_path).unwrap();
            let b = UnixDatagram::bind(&b_path).unwrap();
            a.connect(&b_path).unwrap();
            drop(b);
            assert_eq!(
                a.send(b"x").await.unwrap_err().kind(),
                ErrorKind::ConnectionRefused
            );
            assert_eq!(a.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
            let c = UnixDatagram::bind(dir.path("c.sock")).unwrap();
            c.send_to(b"from c", &a_path).await.unwrap();
            let mut buf = [0; 16];
            let received =
                coop::time::timeout(std::time::Duration::from_millis(200), a.recv(&mut buf)).await;
            let n = received
                .expect("recv discarded a datagram the kernel delivered")
                .unwrap();
            assert_eq!(&buf[..n], b"from c");
        });
    });
}

/// `read(&mut [])` on a Unix stream returns `Ok(0)` at once, as on TCP,
/// also when readiness has been cleared (here by a `try_read` that found
/// nothing): left to the reactor, it would wait for data that never
/// comes. It takes nothing.
#[test]
fn a_unix_read_into_an_empty_buffer_returns_at_once_and_takes_nothing() {
    with_deadline(10, || {
        coop::block_on(async {
            let (mut a, mut b) = UnixStream::pair().unwrap();
            let mut buf = [0u8; 16];
            assert_eq!(
                a.try_read(&mut buf).unwrap_err().kind(),
                ErrorKind::WouldBlock
            );
            let empty = coop::time::timeout(Duration::from_secs(1), a.read(&mut [])).await;
            assert_eq!(
                empty
                    .expect("a read into an empty buffer waited for data")
                    .unwrap(),
                0
            );
            b.write_all(b"data").await.unwrap();
            assert_eq!(a.read(&mut []).await.unwrap(), 0, "with data waiting too");
            let n = a.read(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"data", "and the data is still there");
        });
    });
}

/// `recv` tells two Linux *abstract* names apart (neither a path nor
/// unnamed): a stray queued before `connect` from one is skipped when the
/// socket is connected to the other. Compared by path alone the two look
/// the same, and the stray would be taken as the peer's.
#[cfg(target_os = "linux")]
#[test]
fn a_stray_from_one_abstract_name_is_skipped_when_connected_to_another() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram as StdDatagram};
    with_deadline(10, || {
        let name = |who: &str| {
            let name = format!("coop-test-abstract-{}-{who}", std::process::id());
            SocketAddr::from_abstract_name(name).unwrap()
        };
        let (me_addr, peer_addr, stranger_addr) = (name("me"), name("peer"), name("stranger"));
        let me = StdDatagram::bind_addr(&me_addr).unwrap();
        let peer = StdDatagram::bind_addr(&peer_addr).unwrap();
        let stranger = StdDatagram::bind_addr(&stranger_addr).unwrap();
        stranger.send_to_addr(b"stray", &me_addr).unwrap();
        me.connect_addr(&peer_addr).unwrap();
        peer.send_to_addr(b"from the peer", &me_addr).unwrap();
        coop::block_on(async move {
            let me = UnixDatagram::from_std(me).unwrap();
            let mut buf = [0; 32];
            let n = me.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"from the peer");
            assert_eq!(
                me.try_recv_from(&mut buf).unwrap_err().kind(),
                ErrorKind::WouldBlock,
                "the stray was consumed"
            );
        });
    });
}
