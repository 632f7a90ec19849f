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
