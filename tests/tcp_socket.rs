//! `TcpSocket`: options, backlog and source address set before a socket
//! listens or connects, over real loopback sockets.

mod util;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use futures::FutureExt;
use futures::io::{AsyncReadExt, AsyncWriteExt};

use coop::net::{TcpListener, TcpSocket, TcpStream};
use coop::time::timeout;
use util::{listener, serve_echo, with_deadline};

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Writes `msg` and reads back as many bytes.
async fn round_trip(stream: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    stream.write_all(msg).await.unwrap();
    let mut back = vec![0; msg.len()];
    stream.read_exact(&mut back).await.unwrap();
    back
}

/// The backlog given to `listen` is the kernel's queue: with a backlog of
/// 1, Linux queues two finished handshakes and drops the third's SYN, so
/// that connect is still pending 300 ms later (with the backlog lost, say
/// 1024, it connects at once). Once the server accepts,
/// the client's second SYN (a second on) gets in, and all three echo.
#[test]
fn listen_takes_its_backlog_then_accepts_and_echoes() {
    with_deadline(30, || {
        coop::block_on(async {
            let socket = TcpSocket::new_v4().unwrap();
            socket.bind(any_port()).unwrap();
            let listener = socket.listen(1).unwrap();
            let addr = listener.local_addr().unwrap();

            // Their handshakes end in the kernel, before any accept.
            let queued: Vec<_> = (0..2)
                .map(|_| std::net::TcpStream::connect(addr).unwrap())
                .collect();
            wait_for_queued(addr.port(), 2);
            let mut third = pin!(TcpStream::connect(addr));
            let early = timeout(Duration::from_millis(300), third.as_mut()).await;
            assert!(
                early.is_err(),
                "a third handshake ended with a backlog of 1"
            );

            coop::spawn(serve_echo(listener));
            for std_stream in queued {
                let mut stream = TcpStream::from_std(std_stream).unwrap();
                assert_eq!(round_trip(&mut stream, b"queued").await, b"queued");
            }
            let mut stream = third.await.unwrap();
            assert_eq!(round_trip(&mut stream, b"third").await, b"third");
        });
    });
}

#[test]
fn connect_then_echo() {
    with_deadline(10, || {
        coop::block_on(async {
            let listener = listener();
            let addr = listener.local_addr().unwrap();
            coop::spawn(serve_echo(listener));
            let mut stream = TcpSocket::new_v4().unwrap().connect(addr).await.unwrap();
            assert_eq!(stream.peer_addr().unwrap(), addr);
            assert_eq!(round_trip(&mut stream, b"hello").await, b"hello");
        });
    });
}

/// `bind` before `connect` picks the connection's source: the server sees
/// the port the client's socket was given.
#[test]
fn bind_before_connect_picks_the_source_port() {
    with_deadline(10, || {
        coop::block_on(async {
            let listener = listener();
            let socket = TcpSocket::new_v4().unwrap();
            assert_eq!(socket.local_addr().unwrap().port(), 0, "unbound");
            socket.bind(any_port()).unwrap();
            let chosen = socket.local_addr().unwrap();
            assert_ne!(chosen.port(), 0);

            let stream = socket
                .connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (_served, peer) = listener.accept().await.unwrap();
            assert_eq!(peer, chosen);
            assert_eq!(stream.local_addr().unwrap(), chosen);
        });
    });
}

/// Two listeners with `SO_REUSEPORT` share one port, and the kernel
/// spreads connections between them (by a hash of the client's port: 64
/// connections all landing on one listener has odds of 2^-63). A third
/// socket without the option cannot bind there.
#[test]
fn two_listeners_share_a_port_with_reuseport() {
    with_deadline(10, || {
        coop::block_on(async {
            let first = TcpSocket::new_v4().unwrap();
            first.set_reuseport(true).unwrap();
            first.bind(any_port()).unwrap();
            let addr = first.local_addr().unwrap();
            let second = TcpSocket::new_v4().unwrap();
            second.set_reuseport(true).unwrap();
            second.bind(addr).unwrap();
            let listeners = [first.listen(128).unwrap(), second.listen(128).unwrap()];
            assert_eq!(listeners[1].local_addr().unwrap(), addr);

            let without = TcpSocket::new_v4().unwrap();
            assert_eq!(without.bind(addr).unwrap_err().kind(), ErrorKind::AddrInUse);

            let mut clients = Vec::new();
            for _ in 0..64 {
                clients.push(TcpStream::connect(addr).await.unwrap());
            }
            // Each connection waits in one of the two queues (the last may
            // need a moment: the server queues it when the client's final
            // ACK arrives, after the client's connect has returned). Drain
            // both, without waiting on either.
            let mut accepted = [0; 2];
            while accepted[0] + accepted[1] < 64 {
                for (listener, count) in listeners.iter().zip(&mut accepted) {
                    while let Some(result) = listener.accept().now_or_never() {
                        result.unwrap();
                        *count += 1;
                    }
                }
                coop::time::sleep(Duration::from_millis(5)).await;
            }
            assert_eq!(accepted[0] + accepted[1], 64, "{accepted:?}");
            assert!(
                accepted.iter().all(|&n| n > 0),
                "one listener got all: {accepted:?}"
            );
        });
    });
}

/// Each option reads back what was set (buffer sizes at least what was
/// set: Linux doubles them), from a fresh socket and from one taken over
/// with `from_std_stream`; and a connected stream keeps what its socket
/// had.
#[test]
fn options_read_back_and_carry_into_the_stream() {
    with_deadline(10, || {
        let socket = TcpSocket::new_v4().unwrap();
        assert!(!socket.reuseaddr().unwrap());
        assert!(!socket.reuseport().unwrap());
        assert!(!socket.nodelay().unwrap());
        assert!(!socket.keepalive().unwrap());
        assert_eq!(socket.linger().unwrap(), None);
        assert!(socket.take_error().unwrap().is_none());

        socket.set_reuseaddr(true).unwrap();
        socket.set_reuseport(true).unwrap();
        socket.set_nodelay(true).unwrap();
        socket.set_keepalive(true).unwrap();
        socket.set_linger(Some(Duration::from_secs(3))).unwrap();
        // More than the defaults, or a setter that did nothing would pass.
        let send = socket.send_buffer_size().unwrap() + 4096;
        let recv = socket.recv_buffer_size().unwrap() + 4096;
        socket.set_send_buffer_size(send).unwrap();
        socket.set_recv_buffer_size(recv).unwrap();
        assert!(socket.reuseaddr().unwrap());
        assert!(socket.reuseport().unwrap());
        assert!(socket.nodelay().unwrap());
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.linger().unwrap(), Some(Duration::from_secs(3)));
        assert!(socket.send_buffer_size().unwrap() >= send);
        assert!(socket.recv_buffer_size().unwrap() >= recv);
        // Through the descriptor, as for every coop socket.
        assert!(socket2::SockRef::from(&socket).reuse_address().unwrap());

        // A socket made by hand keeps its options when taken over.
        let raw = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        raw.set_tcp_nodelay(true).unwrap();
        let taken = TcpSocket::from_std_stream(raw.into());
        assert!(taken.nodelay().unwrap());

        coop::block_on(async {
            let listener = listener();
            let addr = listener.local_addr().unwrap();
            coop::spawn(serve_echo(listener));
            let socket = TcpSocket::new_v4().unwrap();
            socket.set_nodelay(true).unwrap();
            socket.set_keepalive(true).unwrap();
            socket.set_recv_buffer_size(recv).unwrap();
            let stream = socket.connect(addr).await.unwrap();
            assert!(stream.nodelay().unwrap());
            let fd = socket2::SockRef::from(&stream);
            assert!(fd.keepalive().unwrap());
            assert!(fd.recv_buffer_size().unwrap() >= recv as usize);

            let mut stream = taken.connect(addr).await.unwrap();
            assert!(stream.nodelay().unwrap());
            assert_eq!(round_trip(&mut stream, b"taken").await, b"taken");
        });
    });
}

#[test]
fn connect_to_a_closed_port_is_refused() {
    with_deadline(20, || {
        coop::block_on(async {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap();
            // The std listener is dropped: nothing listens there now.
            let socket = TcpSocket::new_v4().unwrap();
            let err = timeout(Duration::from_secs(5), socket.connect(port))
                .await
                .expect("the refusal never arrived")
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
        });
    });
}

/// Polled where no runtime runs, `connect` fails as `TcpStream::connect`
/// does, and before the SYN goes out: no connection reaches the server.
/// `listen` there is coop's error too.
#[test]
fn a_connect_outside_a_runtime_is_the_same_error_and_opens_no_connection() {
    with_deadline(10, || {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        server.set_nonblocking(true).unwrap();
        let addr = server.local_addr().unwrap();
        let socket = TcpSocket::new_v4().unwrap();
        let err = futures::executor::block_on(socket.connect(addr)).unwrap_err();
        let stream_err = futures::executor::block_on(TcpStream::connect(addr)).unwrap_err();
        assert_eq!(err.kind(), stream_err.kind());
        assert_eq!(err.to_string(), stream_err.to_string());
        assert!(err.to_string().contains("inside a coop runtime"), "{err}");

        let listen_err = TcpSocket::new_v4().unwrap().listen(8).unwrap_err();
        assert!(
            listen_err.to_string().contains("inside a coop runtime"),
            "{listen_err}"
        );

        // A loopback handshake completes in microseconds; give it ample time.
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_millis(300) {
            match server.accept() {
                Ok((_, peer)) => panic!("a connection from {peer} reached the server"),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("{e}"),
            }
        }
    });
}

/// `TcpListener::bind`, made of `TcpSocket`'s steps, tries each address in
/// turn and returns the last one's error. Outside a runtime every address
/// fails, and an address that could not even bind (here: one in use) must
/// not hide the reason that holds for all of them. It did: the first
/// address bound, listened and failed to register, and the error that
/// came back was the second's `AddrInUse`.
#[test]
fn bind_outside_a_runtime_says_so_whatever_its_addresses() {
    with_deadline(10, || {
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addrs = [any_port(), busy.local_addr().unwrap()];
        let err = TcpListener::bind(&addrs[..]).unwrap_err();
        assert!(err.to_string().contains("inside a coop runtime"), "{err}");
    });
}

/// The IPv4 TCP sockets on this machine whose local port is `port`, from
/// `/proc/net/tcp`: each one's state (`02` is `SYN_SENT`, `0A` is
/// `LISTEN`) and receive queue, which for a listener is the number of
/// finished handshakes waiting for `accept`.
fn tcp_sockets_on_port(port: u16) -> Vec<(String, u32)> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let local = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (_tx, rx) = fields[4].split_once(':').expect("tx_queue:rx_queue");
            let rx = u32::from_str_radix(rx, 16).expect("a hex queue length");
            fields[1]
                .ends_with(&local)
                .then(|| (fields[3].to_owned(), rx))
        })
        .collect()
}

/// Waits until the listener on `port` has `n` finished handshakes queued.
/// A client's `connect` can return before the server has queued it (the
/// kernel may process the client's last ACK later, when the machine is
/// busy); a test that needs a full queue waits for it here.
fn wait_for_queued(port: u16, n: u32) {
    let start = std::time::Instant::now();
    while !tcp_sockets_on_port(port).contains(&("0A".to_owned(), n)) {
        assert!(start.elapsed() < Duration::from_secs(5), "never {n} queued");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// A connect dropped while its handshake waits closes its socket: the
/// half-open connection (`SYN_SENT`, its SYN dropped by a listener whose
/// queue is full) is gone from the kernel's table at once, not left to
/// retry its SYN for two minutes.
#[test]
fn a_connect_dropped_mid_handshake_leaves_no_socket() {
    with_deadline(10, || {
        coop::block_on(async {
            let socket = TcpSocket::new_v4().unwrap();
            socket.bind(any_port()).unwrap();
            // Backlog 0: the queue holds one finished handshake.
            let full: TcpListener = socket.listen(0).unwrap();
            let addr = full.local_addr().unwrap();
            let _first = std::net::TcpStream::connect(addr).unwrap();
            wait_for_queued(addr.port(), 1);

            let client = TcpSocket::new_v4().unwrap();
            client.bind(any_port()).unwrap();
            let port = client.local_addr().unwrap().port();
            // Boxed, so that it can be dropped before the test ends.
            let mut connect = Box::pin(client.connect(addr));
            let early = timeout(Duration::from_millis(200), connect.as_mut()).await;
            assert!(early.is_err(), "connected while the queue was full");
            let half_open = ("02".to_owned(), 0);
            assert_eq!(
                tcp_sockets_on_port(port),
                [half_open],
                "the handshake waits"
            );

            drop(connect);
            assert_eq!(tcp_sockets_on_port(port), []);
        });
    });
}

/// Each boolean option turns off again, and `set_linger(None)` clears a
/// linger: a setter that only ever turned its option on would pass
/// `options_read_back_and_carry_into_the_stream`.
#[test]
fn options_turn_off_again() {
    with_deadline(10, || {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.set_reuseport(true).unwrap();
        socket.set_nodelay(true).unwrap();
        socket.set_keepalive(true).unwrap();
        socket.set_linger(Some(Duration::from_secs(3))).unwrap();
        socket.set_reuseaddr(false).unwrap();
        socket.set_reuseport(false).unwrap();
        socket.set_nodelay(false).unwrap();
        socket.set_keepalive(false).unwrap();
        socket.set_linger(None).unwrap();
        assert!(!socket.reuseaddr().unwrap());
        assert!(!socket.reuseport().unwrap());
        assert!(!socket.nodelay().unwrap());
        assert!(!socket.keepalive().unwrap());
        assert_eq!(socket.linger().unwrap(), None);
    });
}

/// A backlog above `i32::MAX` asks for the kernel's cap (`listen`'s docs),
/// not for a small queue: three handshakes all finish before any accept
/// (with a backlog of 1 the third's SYN would be dropped, and its connect
/// would still be waiting half a second later).
#[test]
fn a_backlog_above_i32_max_is_the_kernel_s_cap() {
    with_deadline(10, || {
        coop::block_on(async {
            let socket = TcpSocket::new_v4().unwrap();
            socket.bind(any_port()).unwrap();
            let listener = socket.listen(u32::MAX).unwrap();
            let addr = listener.local_addr().unwrap();
            let queued: Vec<_> = (0..3)
                .map(|i| {
                    std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500))
                        .unwrap_or_else(|e| panic!("handshake {i} did not finish: {e}"))
                })
                .collect();
            wait_for_queued(addr.port(), 3);
            let (mut first, _) = listener.accept().await.unwrap();
            drop(queued);
            let mut buf = [0; 1];
            assert_eq!(first.read(&mut buf).await.unwrap(), 0);
        });
    });
}
