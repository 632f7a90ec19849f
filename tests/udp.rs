//! UDP round trips over loopback.

mod util;

use std::io::ErrorKind;

use coop::net::UdpSocket;
use util::with_deadline;

#[test]
fn send_to_and_recv_from_round_trip() {
    with_deadline(20, || {
        coop::block_on(async {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let server_addr = server.local_addr().unwrap();
            let echo = coop::spawn(async move {
                let mut buf = [0u8; 2048];
                for _ in 0..100 {
                    let (n, from) = server.recv_from(&mut buf).await.unwrap();
                    server.send_to(&buf[..n], from).await.unwrap();
                }
            });
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut buf = [0u8; 2048];
            for i in 0..100u32 {
                let msg = vec![i as u8; (i as usize * 13) % 1400 + 1];
                client.send_to(&msg, server_addr).await.unwrap();
                let (n, from) = client.recv_from(&mut buf).await.unwrap();
                assert_eq!(from, server_addr);
                assert_eq!(&buf[..n], &msg[..]);
            }
            echo.await.unwrap();
        });
    });
}

/// `peek_from` waits for a datagram and says who sent it, but leaves it
/// queued: the `recv_from` after it takes the same one.
#[test]
fn peek_from_leaves_the_datagram_for_recv_from() {
    with_deadline(20, || {
        coop::block_on(async {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            let client_addr = client.local_addr().unwrap();
            let server_addr = server.local_addr().unwrap();
            let peek = coop::spawn(async move {
                let mut buf = [0u8; 64];
                let (n, from) = server.peek_from(&mut buf).await.unwrap();
                (buf[..n].to_vec(), from, server)
            });
            coop::time::sleep(std::time::Duration::from_millis(20)).await;
            assert!(!peek.is_finished(), "peek_from returned with nothing sent");
            client.send_to(b"first", server_addr).await.unwrap();
            client.send_to(b"second", server_addr).await.unwrap();
            let (peeked, from, server) = peek.await.unwrap();
            assert_eq!((&peeked[..], from), (&b"first"[..], client_addr));

            let mut buf = [0u8; 3];
            let (n, _) = server.peek_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"fir"); // truncated, and still queued
            let mut buf = [0u8; 64];
            for want in [&b"first"[..], b"second"] {
                let (n, from) = server.recv_from(&mut buf).await.unwrap();
                assert_eq!((&buf[..n], from), (want, client_addr));
            }
        });
    });
}

#[test]
fn connected_sockets_send_and_recv() {
    with_deadline(20, || {
        coop::block_on(async {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            assert_eq!(a.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);
            a.connect(b.local_addr().unwrap()).await.unwrap();
            b.connect(a.local_addr().unwrap()).await.unwrap();
            assert_eq!(a.peer_addr().unwrap(), b.local_addr().unwrap());
            let waiting = coop::spawn(async move {
                let mut buf = [0u8; 16];
                let n = b.recv(&mut buf).await.unwrap();
                b.send(&buf[..n]).await.unwrap();
            });
            coop::yield_now().await; // b is now waiting in recv
            a.send(b"ping").await.unwrap();
            let mut buf = [0u8; 16];
            let n = a.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"ping");
            waiting.await.unwrap();
        });
    });
}

#[test]
fn an_icmp_error_is_reported_once_and_does_not_spin_the_loop() {
    with_deadline(20, || {
        coop::block_on(async {
            // A port with nothing behind it: sends provoke ICMP "port unreachable".
            let closed = std::net::UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap();
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            a.connect(closed).await.unwrap();
            a.send(b"anyone?").await.unwrap();
            // Let the loop wait once, so the ICMP error arrives as an *event*
            // (without this, recv's optimistic first try reads the error
            // itself and the reactor never sees it: the bug would hide).
            coop::time::sleep(std::time::Duration::from_millis(20)).await;
            let mut buf = [0u8; 16];
            let err = a.recv(&mut buf).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
            // The socket is healthy again: a further recv waits (and is cut
            // short by the timeout) instead of spinning on a stale error.
            let before = util::thread_cpu_ticks();
            let r =
                coop::time::timeout(std::time::Duration::from_millis(300), a.recv(&mut buf)).await;
            assert!(r.is_err(), "recv should still be waiting");
            assert!(util::thread_cpu_ticks() - before <= 10, "the loop spun");
        });
    });
}

#[test]
fn two_tasks_may_wait_on_one_socket() {
    with_deadline(20, || {
        coop::block_on(async {
            let server = std::rc::Rc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
            let addr = server.local_addr().unwrap();
            let receivers: Vec<_> = (0..2)
                .map(|_| {
                    let s = server.clone();
                    coop::spawn(async move {
                        let mut buf = [0u8; 8];
                        s.recv_from(&mut buf).await.unwrap().0
                    })
                })
                .collect();
            coop::yield_now().await; // both are now waiting
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            client.send_to(b"one", addr).await.unwrap();
            client.send_to(b"two", addr).await.unwrap();
            for r in receivers {
                assert_eq!(r.await.unwrap(), 3, "each waiting task gets a datagram");
            }
        });
    });
}

/// A name given to `send_to` or `connect` is looked up on the blocking
/// pool, not on the loop's thread (see `coop::net::ToSocketAddrs`).
#[test]
fn send_to_and_connect_take_a_name() {
    with_deadline(20, || {
        let rt = coop::Runtime::new().unwrap();
        rt.block_on(async {
            // Both bound to localhost's first address (`bind` resolves in
            // place), which is where `send_to` sends: one family, whether
            // localhost is 127.0.0.1 or ::1 first on this machine.
            let server = UdpSocket::bind("localhost:0").unwrap();
            let port = server.local_addr().unwrap().port();
            let client = UdpSocket::bind("localhost:0").unwrap();
            client
                .send_to(b"by name", ("localhost", port))
                .await
                .unwrap();
            let mut buf = [0u8; 16];
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"by name");
            assert_eq!(from, client.local_addr().unwrap());
            client.connect(format!("localhost:{port}")).await.unwrap();
            client.send(b"connected").await.unwrap();
            let n = server.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"connected");
        });
        assert_eq!(rt.metrics().blocking_jobs, 2);
    });
}

/// `connect` promises that `recv` takes datagrams from the peer only. The
/// kernel keeps that promise for what arrives after `connect` (it drops
/// the rest), but a datagram from elsewhere that was already queued keeps
/// its place, and a plain `recv(2)` returns it: here the stranger's, which
/// came first. (Found in review, session 26.) The peer's datagram that was
/// queued before `connect` is the peer's, and is kept.
#[test]
fn recv_after_connect_skips_a_datagram_queued_from_elsewhere_before_it() {
    with_deadline(20, || {
        coop::block_on(async {
            let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
            let addr = socket.local_addr().unwrap();
            let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
            let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
            stranger.send_to(b"stranger", addr).await.unwrap();
            peer.send_to(b"early", addr).await.unwrap();
            // Loopback delivers within `send_to`; the pause only adds
            // margin. (A datagram delivered late could only make the test
            // pass wrongly: after `connect` the kernel drops the
            // stranger's, and takes the peer's.)
            coop::time::sleep(std::time::Duration::from_millis(20)).await;
            socket.connect(peer.local_addr().unwrap()).await.unwrap();
            peer.send_to(b"late", addr).await.unwrap();
            let mut buf = [0u8; 16];
            let n = socket.recv(&mut buf).await.unwrap();
            assert_eq!(
                &buf[..n],
                b"early",
                "recv returned another sender's datagram"
            );
            let n = socket.recv(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"late");
        });
    });
}

/// A datagram is received whole or not at all: a receive into an empty
/// buffer takes the next datagram, returns 0 and its sender, and discards
/// its bytes (as std's and the OS's do). It waits for a datagram like
/// any receive. So a zero-length buffer skips a datagram; it does not
/// peek.
#[test]
fn a_receive_into_an_empty_buffer_takes_and_discards_one_datagram() {
    with_deadline(20, || {
        coop::block_on(async {
            let a = UdpSocket::bind("127.0.0.1:0").unwrap();
            let b = UdpSocket::bind("127.0.0.1:0").unwrap();
            let to = b.local_addr().unwrap();
            a.send_to(b"one", to).await.unwrap();
            a.send_to(b"two", to).await.unwrap();
            a.send_to(b"three", to).await.unwrap();
            let (n, from) = b.recv_from(&mut []).await.unwrap();
            assert_eq!((n, from), (0, a.local_addr().unwrap()));
            let mut buf = [0u8; 16];
            let (n, _) = b.recv_from(&mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"two", "\"one\" was taken");
            b.connect(a.local_addr().unwrap()).await.unwrap();
            assert_eq!(b.recv(&mut []).await.unwrap(), 0);
            let empty =
                coop::time::timeout(std::time::Duration::from_millis(100), b.recv(&mut buf)).await;
            assert!(empty.is_err(), "\"three\" was taken too: {empty:?}");
        });
    });
}

/// Readiness by hand, for datagrams: `try_recv_from` says `WouldBlock`
/// with nothing queued, after which `readable` waits for an event;
/// `try_send_to` and `try_send` send at once; `try_recv` skips a stray
/// queued before `connect`, as `recv` does.
#[test]
fn readable_and_try_recv_from_take_datagrams_without_waiting() {
    use std::time::Duration;
    with_deadline(20, || {
        coop::block_on(async {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            let stray = UdpSocket::bind("127.0.0.1:0").unwrap();
            let (server_addr, client_addr) =
                (server.local_addr().unwrap(), client.local_addr().unwrap());
            let mut buf = [0u8; 64];
            let err = server.try_recv_from(&mut buf).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::WouldBlock);
            let wait = Duration::from_millis(100);
            assert!(
                coop::time::timeout(wait, server.readable()).await.is_err(),
                "readable returned after a WouldBlock, with nothing sent"
            );

            client.writable().await.unwrap();
            assert_eq!(client.try_send_to(b"one", server_addr).unwrap(), 3);
            let (n, from) = loop {
                server.readable().await.unwrap();
                match server.try_recv_from(&mut buf) {
                    Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                    result => break result.unwrap(),
                }
            };
            assert_eq!((&buf[..n], from), (&b"one"[..], client_addr));

            // A stray queued before connect, then the peer's datagram.
            stray.send_to(b"stray", server_addr).await.unwrap();
            server.peek_from(&mut buf).await.unwrap(); // it has arrived
            server.connect(client_addr).await.unwrap();
            client.connect(server_addr).await.unwrap();
            assert_eq!(client.try_send(b"two").unwrap(), 3);
            let n = loop {
                server.readable().await.unwrap();
                match server.try_recv(&mut buf) {
                    Err(e) if e.kind() == ErrorKind::WouldBlock => continue,
                    result => break result.unwrap(),
                }
            };
            assert_eq!(&buf[..n], b"two");
            let err = server.try_recv(&mut buf).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::WouldBlock, "nothing else is queued");
        });
    });
}

/// The socket options: broadcast and TTL read back what was set, and a
/// socket that joins a multicast group on the loopback interface
/// receives the group's datagrams until it leaves. (The sender names
/// its outgoing interface, which loopback-only machines need.) The
/// receiver binds to the group's address, which takes the group's
/// datagrams and nothing else: not `0.0.0.0`, whose port any host on
/// the network could reach while the test runs (tests stay on loopback).
#[test]
fn options_read_back_and_a_joined_multicast_group_is_received_until_left() {
    use std::net::{Ipv4Addr, SocketAddr};
    use std::time::Duration;
    with_deadline(20, || {
        coop::block_on(async {
            let group = Ipv4Addr::new(239, 255, 77, 1);
            let socket = UdpSocket::bind((group, 0)).unwrap();
            socket.set_broadcast(true).unwrap();
            assert!(socket.broadcast().unwrap());
            socket.set_ttl(9).unwrap();
            assert_eq!(socket.ttl().unwrap(), 9);
            socket.set_multicast_ttl_v4(3).unwrap();
            assert_eq!(socket.multicast_ttl_v4().unwrap(), 3);
            socket.set_multicast_loop_v4(false).unwrap();
            assert!(!socket.multicast_loop_v4().unwrap());
            socket.set_multicast_loop_v4(true).unwrap();
            assert!(socket.take_error().unwrap().is_none());

            let lo = Ipv4Addr::LOCALHOST;
            socket.join_multicast_v4(group, lo).unwrap();
            let sender = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::DGRAM,
                Some(socket2::Protocol::UDP),
            )
            .unwrap();
            sender.set_multicast_if_v4(&lo).unwrap();
            let sender = UdpSocket::from_std(sender.into()).unwrap();
            let to = SocketAddr::from((group, socket.local_addr().unwrap().port()));
            sender.send_to(b"to the group", to).await.unwrap();
            let mut buf = [0u8; 64];
            let wait = Duration::from_secs(5);
            let (n, _) = coop::time::timeout(wait, socket.recv_from(&mut buf))
                .await
                .expect("the group's datagram did not come")
                .unwrap();
            assert_eq!(&buf[..n], b"to the group");

            socket.leave_multicast_v4(group, lo).unwrap();
            sender.send_to(b"after leaving", to).await.unwrap();
            let wait = Duration::from_millis(200);
            let late = coop::time::timeout(wait, socket.recv_from(&mut buf)).await;
            assert!(late.is_err(), "a datagram came after leaving: {late:?}");
        });
    });
}
