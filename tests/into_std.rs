//! `into_std`: every socket type handed back as its std socket, the
//! reverse of `from_std`. The socket leaves its reactor (the slot freed,
//! the descriptor out of the epoll set), keeps its connection and queued
//! data, and comes back non-blocking, for blocking code on another thread.

mod util;

use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Duration;

use futures::io::{AsyncReadExt, AsyncWriteExt};

use coop::Runtime;
use coop::net::{TcpListener, TcpStream, UdpSocket, UnixDatagram, UnixListener, UnixStream};
use util::with_deadline;

/// Whether the descriptor is in non-blocking mode (`O_NONBLOCK`).
fn nonblocking(socket: &impl std::os::fd::AsFd) -> bool {
    socket2::SockRef::from(socket).nonblocking().unwrap()
}

/// A connected pair over loopback: the client's end and the server's.
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

#[test]
fn a_stream_handed_to_a_thread_does_blocking_io_while_the_loop_runs_on() {
    with_deadline(20, || {
        coop::block_on(async {
            let (mut client, server) = tcp_pair().await;
            let fd = server.as_raw_fd();
            let mut server = server.into_std().unwrap();
            assert_eq!(server.as_raw_fd(), fd, "the same descriptor");
            // Still non-blocking, as documented: a read finds no data and
            // says so instead of waiting.
            assert!(nonblocking(&server));
            assert_eq!(
                server.read(&mut [0; 8]).unwrap_err().kind(),
                ErrorKind::WouldBlock
            );
            server.set_nonblocking(false).unwrap();

            // A plain thread echoes, blocking, and takes its time.
            let thread = std::thread::spawn(move || {
                let mut buf = [0; 5];
                server.read_exact(&mut buf).unwrap();
                std::thread::sleep(Duration::from_millis(100));
                server.write_all(&buf).unwrap();
                // Then end of file, when the client closes.
                assert_eq!(server.read(&mut buf).unwrap(), 0);
            });

            // Meanwhile the loop runs other tasks.
            let ticks = Rc::new(Cell::new(0));
            let ticker = coop::spawn({
                let ticks = ticks.clone();
                async move {
                    loop {
                        coop::time::sleep(Duration::from_millis(5)).await;
                        ticks.set(ticks.get() + 1);
                    }
                }
            });
            client.write_all(b"hello").await.unwrap();
            let mut buf = [0; 5];
            client.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"hello");
            assert!(
                ticks.get() >= 5,
                "the loop kept running while the thread blocked: {} ticks",
                ticks.get()
            );
            ticker.abort();
            client.close().await.unwrap();
            drop(client);
            coop::spawn_blocking(move || thread.join().unwrap())
                .await
                .unwrap();
        });
    });
}

#[test]
fn into_std_frees_the_sockets_place_in_the_reactor() {
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let (client, server) = rt.block_on(tcp_pair());
        // The listener was dropped: the two streams are left.
        assert_eq!(rt.metrics().io_sources, 2);
        let server = server.into_std().unwrap();
        assert_eq!(rt.metrics().io_sources, 1, "the slot is freed");
        let client = client.into_std().unwrap();
        assert_eq!(rt.metrics().io_sources, 0);
        drop((client, server));
    });
}

/// epoll refuses to add a descriptor it holds already (`EEXIST`): a
/// registration that lingered would make `from_std` fail.
#[test]
fn the_same_descriptor_registers_again_with_from_std() {
    with_deadline(20, || {
        coop::block_on(async {
            let (mut client, server) = tcp_pair().await;
            // Data the reactor has seen: readiness recorded in the slot.
            client.write_all(b"before").await.unwrap();
            server.readable().await.unwrap();
            let fd = server.as_raw_fd();
            let std = server.into_std().unwrap();
            let mut server = TcpStream::from_std(std).unwrap();
            assert_eq!(server.as_raw_fd(), fd);
            // The queued bytes are still there, then new ones arrive
            // through the new registration.
            let mut buf = [0; 6];
            server.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"before");
            client.write_all(b"after!").await.unwrap();
            server.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"after!");
            server.write_all(b"back").await.unwrap();
            let mut back = [0; 4];
            client.read_exact(&mut back).await.unwrap();
            assert_eq!(&back, b"back");
        });
    });
}

#[test]
fn a_listener_handed_back_accepts_in_blocking_mode() {
    with_deadline(20, || {
        coop::block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            // A connection queued before the hand-over stays queued.
            let mut first = TcpStream::connect(addr).await.unwrap();
            let listener = listener.into_std().unwrap();
            assert!(nonblocking(&listener));
            listener.set_nonblocking(false).unwrap();
            let thread = std::thread::spawn(move || {
                let mut got = Vec::new();
                for _ in 0..2 {
                    // Blocking accepts, and blocking reads on what they
                    // accept (which inherits blocking mode).
                    let (mut stream, _) = listener.accept().unwrap();
                    let mut buf = [0; 1];
                    stream.read_exact(&mut buf).unwrap();
                    got.push(buf[0]);
                }
                got
            });
            first.write_all(b"1").await.unwrap();
            // This one connects after the hand-over: the thread's accept
            // waits for it.
            coop::time::sleep(Duration::from_millis(50)).await;
            let mut second = TcpStream::connect(addr).await.unwrap();
            second.write_all(b"2").await.unwrap();
            let got = coop::spawn_blocking(move || thread.join().unwrap())
                .await
                .unwrap();
            assert_eq!(got, b"12");
        });
    });
}

#[test]
fn a_udp_socket_handed_back_keeps_its_queue_and_round_trips() {
    with_deadline(20, || {
        coop::block_on(async {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
            b.send_to(b"queued", a_addr).await.unwrap();
            a.readable().await.unwrap(); // readiness recorded in the slot
            let a = a.into_std().unwrap();
            assert!(nonblocking(&a));
            a.set_nonblocking(false).unwrap();
            let mut buf = [0; 16];
            let (n, from) = a.recv_from(&mut buf).unwrap(); // queued: no wait
            assert_eq!((&buf[..n], from), (&b"queued"[..], b_addr));
            a.send_to(b"reply", b_addr).unwrap();
            let (n, from) = b.recv_from(&mut buf).await.unwrap();
            assert_eq!((&buf[..n], from), (&b"reply"[..], a_addr));
            // The descriptor registers again.
            let a = UdpSocket::from_std(a).unwrap();
            b.send_to(b"again", a_addr).await.unwrap();
            let (n, _) = a.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"again");
        });
    });
}

#[test]
fn a_unix_datagram_handed_back_round_trips() {
    with_deadline(20, || {
        coop::block_on(async {
            let (a, b) = UnixDatagram::pair().unwrap();
            b.send(b"queued").await.unwrap();
            a.readable().await.unwrap();
            let a = a.into_std().unwrap();
            assert!(nonblocking(&a));
            a.set_nonblocking(false).unwrap();
            let mut buf = [0; 16];
            let n = a.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"queued");
            a.send(b"reply").unwrap();
            let n = b.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"reply");
            let a = UnixDatagram::from_std(a).unwrap();
            b.send(b"again").await.unwrap();
            let n = a.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"again");
        });
    });
}

#[test]
fn a_unix_listener_and_stream_handed_back_serve_a_blocking_thread() {
    with_deadline(20, || {
        let dir = std::env::temp_dir().join(format!("coop-into-std-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("sock");
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let listener = UnixListener::bind(&path).unwrap();
            let listener = listener.into_std().unwrap();
            assert!(nonblocking(&listener));
            listener.set_nonblocking(false).unwrap();
            let thread = std::thread::spawn(move || {
                let (mut stream, _) = listener.accept().unwrap();
                let mut buf = [0; 4];
                stream.read_exact(&mut buf).unwrap();
                stream.write_all(&buf).unwrap();
            });
            let mut client = UnixStream::connect(&path).await.unwrap();
            client.write_all(b"ping").await.unwrap();
            let mut buf = [0; 4];
            client.read_exact(&mut buf).await.unwrap();
            assert_eq!(&buf, b"ping");
            coop::spawn_blocking(move || thread.join().unwrap())
                .await
                .unwrap();
            // The client's end too: the peer has closed, so a blocking
            // read says end of file.
            let mut client = client.into_std().unwrap();
            assert!(nonblocking(&client));
            client.set_nonblocking(false).unwrap();
            assert_eq!(client.read(&mut buf).unwrap(), 0);
        });
        assert_eq!(rt.metrics().io_sources, 0);
        std::fs::remove_dir_all(&dir).unwrap();
    });
}

/// The `Rc` keeps the reactor's epoll instance: handed back after its
/// runtime is gone, a socket is deregistered from it and works as before.
#[test]
fn into_std_works_outside_and_after_the_runtime() {
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let (client, server) = rt.block_on(tcp_pair());
        // Outside `block_on`, the runtime alive.
        let mut client = client.into_std().unwrap();
        assert_eq!(rt.metrics().io_sources, 1);
        drop(rt);
        // After the runtime was dropped.
        let mut server = server.into_std().unwrap();
        server.set_nonblocking(false).unwrap();
        client.set_nonblocking(false).unwrap();
        client.write_all(b"still here").unwrap();
        let mut buf = [0; 10];
        server.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"still here");
    });
}

/// A socket leaves the epoll set *before* it closes: `IoSource` declares
/// its `Registration` before the socket, and Rust drops fields in that
/// order. Closed first, a descriptor whose file a duplicate keeps open
/// would stay in the set (epoll forgets a file only when its last
/// descriptor closes, and `EPOLL_CTL_DEL` by a closed number fails), and
/// its events would name the freed slot, which the next socket takes.
/// Here a datagram sent to the dropped socket's file (kept open by a
/// `dup`) must bring the reactor no event at all.
#[test]
fn a_dropped_socket_whose_file_a_duplicate_keeps_open_brings_no_event() {
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let rt = &rt;
        rt.block_on(async {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let a_addr = a.local_addr().unwrap();
            let dup = std::os::fd::AsFd::as_fd(&a).try_clone_to_owned().unwrap();
            drop(a);
            // The next socket takes the freed slot (a slab reuses the key
            // freed last); a turn of the loop takes its first events (a
            // new socket is writable at once).
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            coop::time::sleep(Duration::from_millis(20)).await;
            let before = rt.metrics().io_events;
            // The sender is a std socket, registered nowhere.
            let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            sender.send_to(b"stray", a_addr).unwrap();
            coop::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(
                rt.metrics().io_events - before,
                0,
                "an event came for the dropped socket's file"
            );
            // The datagram is there, for the duplicate's owner.
            let dup = std::net::UdpSocket::from(dup);
            let mut buf = [0; 8];
            let (n, _) = dup.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"stray");
            drop(b);
        });
    });
}
