//! Small programs written the way a tokio user would write them, against
//! coop's public API only: a chat server, timeouts, an interval beside an
//! accept loop, UDP with a retry, the blocking pool behind a socket, a
//! `Handle` used from a plain thread, `abort`, dropping the runtime, a
//! `JoinSet` fan-out matched by task id, and a Unix control socket.
//! Each is a usage example as much as a test. All talk over loopback (or a
//! socket file in the temporary directory), and each runs under a
//! deadline.

mod util;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures::channel::{mpsc, oneshot};
use futures::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt, join, select};

use coop::Runtime;
use coop::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use coop::task::JoinSet;
use coop::time::{interval, sleep, timeout};
use util::with_deadline;

// ---------------------------------------------------------------------
// A line-based chat server.

/// Who is connected: each client's task has an mpsc sender here.
type Peers = Rc<RefCell<HashMap<usize, mpsc::UnboundedSender<String>>>>;

/// One chat client's task on the server: forwards each line it reads to
/// every other client, and writes what the others send to its socket,
/// both at once through `select!` on the split halves.
async fn chat_session(id: usize, stream: TcpStream, peers: Peers) {
    let (rd, mut wr) = stream.into_split();
    let (tx, mut inbox) = mpsc::unbounded();
    peers.borrow_mut().insert(id, tx);
    // Registered: only now can this client be sure to see others' lines.
    let welcome = wr.write_all(format!("welcome {id}\n").as_bytes()).await;
    let mut lines = BufReader::new(rd).lines();
    while welcome.is_ok() {
        select! {
            line = lines.next().fuse() => match line {
                Some(Ok(line)) => {
                    for (other, tx) in peers.borrow().iter() {
                        if *other != id {
                            let _ = tx.unbounded_send(format!("{id}: {line}\n"));
                        }
                    }
                }
                // End of file, or an error such as a reset: the client left.
                _ => break,
            },
            msg = inbox.next() => match msg {
                Some(msg) => {
                    if wr.write_all(msg.as_bytes()).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
        }
    }
    peers.borrow_mut().remove(&id);
}

/// A chat client: its connection, buffered for `read_line`.
struct Client {
    rd: BufReader<coop::net::OwnedReadHalf>,
    wr: coop::net::OwnedWriteHalf,
}

impl Client {
    /// Connects and waits for the server's welcome.
    async fn join(addr: SocketAddr) -> Client {
        let (rd, wr) = TcpStream::connect(addr).await.unwrap().into_split();
        let mut client = Client {
            rd: BufReader::new(rd),
            wr,
        };
        assert!(client.line().await.starts_with("welcome "));
        client
    }

    async fn say(&mut self, line: &str) {
        self.wr.write_all(line.as_bytes()).await.unwrap();
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        self.rd.read_line(&mut line).await.unwrap();
        line
    }
}

/// Three clients join; a line from one reaches the two others and not
/// itself; one client leaves abruptly (a reset, in the middle of a line);
/// the rest keep chatting; and once everyone has gone, the server holds
/// no session, no socket but its listener, and no timer.
#[test]
fn a_chat_server_broadcasts_lines_and_survives_a_client_reset_mid_line() {
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let peers = Peers::default();
            let server = {
                let peers = peers.clone();
                coop::spawn(async move {
                    let mut sessions = FuturesUnordered::new();
                    for id in 0.. {
                        select! {
                            accepted = listener.accept().fuse() => {
                                let (stream, _) = accepted.unwrap();
                                sessions.push(coop::spawn(chat_session(id, stream, peers.clone())));
                            }
                            // Reap finished sessions as they end.
                            done = sessions.select_next_some() => done.unwrap(),
                        }
                    }
                })
            };

            let mut a = Client::join(addr).await;
            let mut b = Client::join(addr).await;
            let mut c = Client::join(addr).await;
            a.say("hello\n").await;
            assert_eq!(b.line().await, "0: hello\n");
            assert_eq!(c.line().await, "0: hello\n");
            // Two lines in one write, from b: both arrive, in order.
            b.say("one\ntwo\n").await;
            assert_eq!(a.line().await, "1: one\n");
            assert_eq!(a.line().await, "1: two\n");
            assert_eq!(c.line().await, "1: one\n");
            assert_eq!(c.line().await, "1: two\n");

            // c sends half a line, then resets the connection (linger 0).
            c.say("half a li").await;
            let stream = c.rd.into_inner().reunite(c.wr).unwrap();
            socket2::SockRef::from(&stream)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(stream);
            while peers.borrow().len() > 2 {
                sleep(Duration::from_millis(1)).await;
            }

            // The others go on; a never sees its own line.
            a.say("still here?\n").await;
            assert_eq!(b.line().await, "0: still here?\n");
            b.say("yes\n").await;
            assert_eq!(a.line().await, "1: yes\n");

            // a leaves politely (FIN), b sees nothing of it, then leaves.
            drop(a);
            while peers.borrow().len() > 1 {
                sleep(Duration::from_millis(1)).await;
            }
            drop(b);
            while !peers.borrow().is_empty() {
                sleep(Duration::from_millis(1)).await;
            }
            server.abort();
            assert!(server.await.unwrap_err().is_cancelled());
            let m = rt.metrics();
            assert_eq!(m.io_sources, 0, "the listener and every connection closed");
            assert_eq!(m.timers_pending, 0);
            // The server task and this one's sessions are gone; main is not counted.
            assert_eq!(m.tasks_alive, 0);
        });
    });
}

// ---------------------------------------------------------------------
// Timeouts.

/// A server that accepts (the kernel's backlog completes the handshake)
/// but never answers: `timeout` around the connect and the read gives up
/// on time, and leaves neither the socket nor the timer behind.
#[test]
fn a_timeout_gives_up_on_a_server_that_never_answers() {
    with_deadline(20, || {
        // A std listener that nobody accepts on: connects still complete.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap();
        let rt = Runtime::new().unwrap();
        rt.block_on(async {
            let start = Instant::now();
            let result = timeout(Duration::from_millis(100), async {
                let mut stream = TcpStream::connect(addr).await?;
                stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
                let mut reply = Vec::new();
                stream.read_to_end(&mut reply).await?;
                Ok::<_, std::io::Error>(reply)
            })
            .await;
            let took = start.elapsed();
            assert!(result.is_err(), "got {result:?}");
            assert!(
                took >= Duration::from_millis(100),
                "gave up early: {took:?}"
            );
            assert!(took < Duration::from_secs(2), "gave up late: {took:?}");
            let m = rt.metrics();
            assert_eq!(m.io_sources, 0, "the timed-out connection was closed");
            assert_eq!(m.timers_pending, 0, "the timer was removed");
        });
    });
}

/// An idle timeout per connection, tokio style: one `Sleep` in a
/// `select!` beside the read, pushed back with `reset` after each read.
/// A client that writes every 20 ms stays connected through five writes;
/// 150 ms after its last byte, the server gives up on it.
#[test]
fn an_idle_timeout_is_pushed_back_by_each_read() {
    with_deadline(20, || {
        coop::block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let idle = Duration::from_millis(150);
            let server = coop::spawn(async move {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut timer = sleep(idle);
                let (mut got, mut buf) = (0, [0; 16]);
                loop {
                    select! {
                        n = stream.read(&mut buf).fuse() => match n.unwrap() {
                            0 => panic!("the client closed first"),
                            n => {
                                got += n;
                                std::pin::Pin::new(&mut timer).reset(Instant::now() + idle);
                            }
                        },
                        // `Sleep` is `Unpin`: `&mut timer` is a future too.
                        _ = (&mut timer).fuse() => return (got, Instant::now()),
                    }
                }
            });
            let mut client = TcpStream::connect(addr).await.unwrap();
            for _ in 0..5 {
                sleep(Duration::from_millis(20)).await;
                client.write_all(b"x").await.unwrap();
            }
            let last = Instant::now();
            let (got, gave_up) = server.await.unwrap();
            assert_eq!(got, 5);
            let after = gave_up - last;
            // The server reset its timer when it read the last byte, after
            // `last`, and a sleep never ends early.
            assert!(after >= idle, "gave up early: {after:?}");
            assert!(after < Duration::from_secs(1), "gave up late: {after:?}");
        });
    });
}

// ---------------------------------------------------------------------
// An interval beside an accept loop.

/// A housekeeping tick every 10 ms keeps ticking while the same task
/// accepts connections, with both in one `select!`; neither starves the
/// other.
#[test]
fn an_interval_ticks_while_the_same_task_accepts_connections() {
    with_deadline(20, || {
        coop::block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            // Three clients, 40 ms apart.
            let clients = coop::spawn(async move {
                for i in 0..3u8 {
                    sleep(Duration::from_millis(40)).await;
                    let mut s = TcpStream::connect(addr).await.unwrap();
                    s.write_all(&[i]).await.unwrap();
                }
            });
            let mut housekeeping = interval(Duration::from_millis(10));
            let start = Instant::now();
            let (mut ticks, mut got) = (0u32, Vec::new());
            while got.len() < 3 {
                select! {
                    _ = housekeeping.tick().fuse() => ticks += 1,
                    accepted = listener.accept().fuse() => {
                        let (mut stream, _) = accepted.unwrap();
                        let mut byte = [0];
                        stream.read_exact(&mut byte).await.unwrap();
                        got.push(byte[0]);
                    }
                }
            }
            let elapsed = start.elapsed();
            clients.await.unwrap();
            assert_eq!(got, [0, 1, 2]);
            // The first tick is at once, then one per 10 ms (`Burst` catches
            // up after a late turn): about elapsed / 10 ms of them, give or
            // take the last one or two on a busy machine.
            let due = (elapsed.as_millis() / 10) as u32;
            assert!(ticks + 2 >= due, "{ticks} ticks in {elapsed:?}");
            assert!(ticks <= due + 2, "{ticks} ticks in {elapsed:?}");
        });
    });
}

// ---------------------------------------------------------------------
// A proxy: `futures::io::copy` both ways.

/// A TCP proxy between a client and an echo server, each direction a
/// `futures::io::copy` over borrowed halves, run together with `join!`;
/// each side's end of file is passed on with `close` (a FIN), so 2 MB go
/// through and back whole and every connection ends cleanly.
#[test]
fn a_proxy_copies_both_ways_and_passes_each_end_of_file_on() {
    with_deadline(20, || {
        coop::block_on(async {
            let echo = TcpListener::bind("127.0.0.1:0").unwrap();
            let echo_addr = echo.local_addr().unwrap();
            coop::spawn(async move {
                let (stream, _) = echo.accept().await.unwrap();
                // `TcpStream::split(&s)`, not `s.split()`: see its docs.
                let (mut rd, mut wr) = TcpStream::split(&stream);
                futures::io::copy(&mut rd, &mut wr).await.unwrap();
                wr.close().await.unwrap();
            });
            let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
            let proxy_addr = proxy.local_addr().unwrap();
            let proxied = coop::spawn(async move {
                let (client, _) = proxy.accept().await.unwrap();
                let upstream = TcpStream::connect(echo_addr).await.unwrap();
                let (mut client_rd, mut client_wr) = TcpStream::split(&client);
                let (mut up_rd, mut up_wr) = TcpStream::split(&upstream);
                let to_server = async {
                    let n = futures::io::copy(&mut client_rd, &mut up_wr).await.unwrap();
                    up_wr.close().await.unwrap();
                    n
                };
                let to_client = async {
                    let n = futures::io::copy(&mut up_rd, &mut client_wr).await.unwrap();
                    client_wr.close().await.unwrap();
                    n
                };
                join!(to_server, to_client)
            });
            let client = TcpStream::connect(proxy_addr).await.unwrap();
            let data: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
            let (mut rd, mut wr) = TcpStream::split(&client);
            let send = async {
                wr.write_all(&data).await.unwrap();
                wr.close().await.unwrap();
            };
            let mut back = Vec::new();
            let receive = rd.read_to_end(&mut back);
            let ((), received) = join!(send, receive);
            assert_eq!(received.unwrap(), data.len());
            assert!(back == data, "the data came back changed");
            assert_eq!(proxied.await.unwrap(), (2_000_000, 2_000_000));
        });
    });
}

// ---------------------------------------------------------------------
// UDP with a lost datagram.

/// A request/response over UDP where the server "loses" the first request:
/// the client's `timeout` around `recv` expires, it sends again, and the
/// second try gets the answer.
#[test]
fn a_udp_request_is_retried_after_a_lost_datagram() {
    with_deadline(20, || {
        coop::block_on(async {
            let server = UdpSocket::bind("127.0.0.1:0").unwrap();
            let server_addr = server.local_addr().unwrap();
            let serving = coop::spawn(async move {
                let mut buf = [0; 1500];
                for request in 0.. {
                    let (n, from) = server.recv_from(&mut buf).await.unwrap();
                    if request == 0 {
                        continue; // lost on the way
                    }
                    let mut reply = b"pong ".to_vec();
                    reply.extend_from_slice(&buf[..n]);
                    server.send_to(&reply, from).await.unwrap();
                }
            });

            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            client.connect(server_addr).await.unwrap();
            let mut buf = [0; 1500];
            let mut attempts = 0;
            let n = loop {
                attempts += 1;
                client.send(b"ping 7").await.unwrap();
                match timeout(Duration::from_millis(100), client.recv(&mut buf)).await {
                    Ok(received) => break received.unwrap(),
                    Err(_elapsed) => assert!(attempts < 5, "no answer after {attempts} tries"),
                }
            };
            assert_eq!(&buf[..n], b"pong ping 7");
            assert!(attempts >= 2, "the first request was lost, yet answered");
            serving.abort();
        });
    });
}

// ---------------------------------------------------------------------
// The blocking pool behind a socket.

/// Each connection asks for a slow computation (a blocking call here);
/// the server runs it with `spawn_blocking` and writes the result back.
/// Four clients at once are served in about the time of one: the loop
/// never waited for a job.
#[test]
fn spawn_blocking_results_are_written_back_to_their_connections() {
    with_deadline(20, || {
        coop::block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            coop::spawn(async move {
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    coop::spawn(async move {
                        let mut stream = BufReader::new(stream);
                        let mut line = String::new();
                        stream.read_line(&mut line).await.unwrap();
                        let n: u64 = line.trim().parse().unwrap();
                        let square = coop::spawn_blocking(move || {
                            std::thread::sleep(Duration::from_millis(100));
                            n * n
                        })
                        .await
                        .unwrap();
                        let reply = format!("{square}\n");
                        stream.get_mut().write_all(reply.as_bytes()).await.unwrap();
                    });
                }
            });

            let start = Instant::now();
            let mut asks: FuturesUnordered<_> = (1..=4u64)
                .map(|n| async move {
                    let mut stream = TcpStream::connect(addr).await.unwrap();
                    stream.write_all(format!("{n}\n").as_bytes()).await.unwrap();
                    let mut reply = String::new();
                    stream.read_to_string(&mut reply).await.unwrap_or(0);
                    (n, reply)
                })
                .collect();
            let mut answered = 0;
            while let Some((n, reply)) = asks.next().await {
                assert_eq!(reply, format!("{}\n", n * n));
                answered += 1;
            }
            assert_eq!(answered, 4);
            let took = start.elapsed();
            assert!(
                took < Duration::from_millis(390),
                "served one by one: {took:?}"
            );
        });
    });
}

// ---------------------------------------------------------------------
// A Handle from another thread.

/// A plain thread (say, one that a blocking library calls back on) asks
/// the runtime to make a request. A future that holds a coop socket is not
/// `Send` (the socket belongs to its loop's thread), so `Handle::spawn`
/// would refuse it; `Handle::spawn_with` sends a closure that builds the
/// future on the loop instead, and only the answer comes back.
#[test]
fn a_handle_lets_a_plain_thread_start_a_request_on_the_loop() {
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let handle = rt.handle();
        let (done_tx, done_rx) = oneshot::channel();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel::<SocketAddr>();
        let worker = std::thread::spawn(move || {
            let addr = addr_rx.recv().unwrap();
            let answer = handle.spawn_with(move || async move {
                let mut stream = TcpStream::connect(addr).await.unwrap();
                stream.write_all(b"abc").await.unwrap();
                let mut echo = [0; 3];
                stream.read_exact(&mut echo).await.unwrap();
                echo
            });
            let echoed = futures::executor::block_on(answer).unwrap();
            done_tx.send(echoed).unwrap();
        });
        let echoed = rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0; 3];
            stream.read_exact(&mut buf).await.unwrap();
            stream.write_all(&buf).await.unwrap();
            done_rx.await.unwrap()
        });
        assert_eq!(&echoed, b"abc");
        worker.join().unwrap();
    });
}

// ---------------------------------------------------------------------
// Aborting a task that waits in a read.

/// A task that owns its connection and waits in `read`: aborting it drops
/// the future, and with it the socket, so the peer reads end of file. A
/// socket shared through an `Rc` outlives the aborted reader, and a new
/// reader gets the next bytes (the dead task's wait does not swallow the
/// wake).
#[test]
fn aborting_a_task_blocked_in_read_closes_its_socket_or_hands_it_on() {
    with_deadline(20, || {
        coop::block_on(async {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();

            // 1. The task owns the socket.
            let owned = TcpStream::connect(addr).await.unwrap();
            let (mut peer, _) = listener.accept().unwrap();
            let reader = coop::spawn(async move {
                let mut owned = owned;
                let mut buf = [0; 16];
                owned.read(&mut buf).await
            });
            sleep(Duration::from_millis(20)).await; // it waits in read now
            assert!(!reader.is_finished());
            reader.abort();
            assert!(reader.await.unwrap_err().is_cancelled());
            let mut buf = [0; 16];
            assert_eq!(peer.read(&mut buf).unwrap(), 0, "the peer sees end of file");

            // 2. The socket is shared; only the reader is aborted.
            let shared = Rc::new(TcpStream::connect(addr).await.unwrap());
            let (mut peer, _) = listener.accept().unwrap();
            let first = {
                let shared = shared.clone();
                coop::spawn(async move { (&*shared).read(&mut [0; 16]).await })
            };
            sleep(Duration::from_millis(20)).await;
            first.abort();
            assert!(first.await.unwrap_err().is_cancelled());
            let second = {
                let shared = shared.clone();
                coop::spawn(async move {
                    let mut buf = [0; 16];
                    let n = (&*shared).read(&mut buf).await.unwrap();
                    buf[..n].to_vec()
                })
            };
            sleep(Duration::from_millis(20)).await;
            peer.write_all(b"after").unwrap();
            assert_eq!(second.await.unwrap(), b"after");
            (&*shared).write_all(b"ok").await.unwrap();
            let mut buf = [0; 2];
            peer.read_exact(&mut buf).unwrap();
            assert_eq!(&buf, b"ok");
        });
    });
}

// ---------------------------------------------------------------------
// Dropping the runtime.

/// Dropping a runtime drops its tasks and their sockets: the listener
/// stops listening and each connection is closed (its peer, blocked in a
/// read on another thread, sees end of file). A join handle kept outside
/// then says cancelled, and a socket kept outside stays open, but using
/// it outside its runtime is an error that says so.
#[test]
fn dropping_the_runtime_closes_the_sockets_its_tasks_held() {
    with_deadline(20, || {
        let rt = Runtime::new().unwrap();
        let (kept, peer_of_kept) = rt.block_on(async {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let kept = TcpStream::connect(listener.local_addr().unwrap())
                .await
                .unwrap();
            let (peer_of_kept, _) = listener.accept().await.unwrap();
            (kept, peer_of_kept)
        });
        // An echo server, run by a task, serving a client on another thread.
        let (addr_tx, addr_rx) = oneshot::channel();
        let server = rt.spawn(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                coop::spawn(async move {
                    let mut buf = [0; 64];
                    while let Ok(n @ 1..) = stream.read(&mut buf).await {
                        stream.write_all(&buf[..n]).await.unwrap();
                    }
                });
            }
        });
        let addr = rt.block_on(addr_rx).unwrap();
        let (ready_tx, ready_rx) = oneshot::channel();
        let client = std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.write_all(b"hi").unwrap();
            let mut buf = [0; 2];
            s.read_exact(&mut buf).unwrap();
            ready_tx.send(()).unwrap();
            // Now wait in a read until the server goes away.
            s.read(&mut [0; 1]).unwrap()
        });
        rt.block_on(ready_rx).unwrap();
        drop(rt);
        assert_eq!(client.join().unwrap(), 0, "the connection was closed");
        assert_eq!(
            std::net::TcpStream::connect(addr).unwrap_err().kind(),
            std::io::ErrorKind::ConnectionRefused
        );
        let cancelled = futures::executor::block_on(server).unwrap_err();
        assert!(cancelled.is_cancelled());

        // The socket kept outside: open (its peer, kept too, has sent
        // nothing, so a read would wait), but tied to a runtime now gone.
        let mut kept = kept;
        let err = futures::executor::block_on(kept.read(&mut [0; 1])).unwrap_err();
        assert!(err.to_string().contains("runtime"), "{err}");
        // Writing needs no wait, and works.
        futures::executor::block_on(kept.write_all(b"still open")).unwrap();
        drop(peer_of_kept);
    });
}

// ---------------------------------------------------------------------
// Fan-out with a JoinSet, each answer matched to its request.

/// A gateway asks three backends at once and must say which answered
/// what. `join_next_with_id` hands out each result with its task's id,
/// the one `spawn`'s abort handle gave; a backend that hangs up makes its
/// task panic, and the `JoinError` names that task too.
#[test]
fn a_join_set_matches_each_answer_to_its_backend_by_task_id() {
    with_deadline(20, || {
        coop::block_on(async {
            // Two backends answer with their name; gamma hangs up at once.
            let mut backends = Vec::new();
            for name in ["alpha", "beta", "gamma"] {
                let listener = TcpListener::bind("127.0.0.1:0").unwrap();
                backends.push((name, listener.local_addr().unwrap()));
                coop::spawn(async move {
                    let (mut stream, _) = listener.accept().await.unwrap();
                    if name != "gamma" {
                        stream.write_all(name.as_bytes()).await.unwrap();
                    }
                });
            }

            let mut set = JoinSet::new();
            let mut asked = HashMap::new();
            for (name, addr) in backends {
                let task = set.spawn(async move {
                    let mut stream = TcpStream::connect(addr).await.unwrap();
                    let mut reply = String::new();
                    stream.read_to_string(&mut reply).await.unwrap();
                    assert!(!reply.is_empty(), "{name} hung up");
                    reply
                });
                asked.insert(task.id(), name);
            }
            let (mut answered, mut failed) = (Vec::new(), Vec::new());
            while let Some(result) = set.join_next_with_id().await {
                match result {
                    Ok((id, reply)) => {
                        assert_eq!(reply, asked[&id], "an answer matched to the wrong backend");
                        answered.push(asked[&id]);
                    }
                    Err(e) => {
                        assert!(e.is_panic(), "{e}");
                        failed.push(asked[&e.id()]);
                    }
                }
            }
            answered.sort();
            assert_eq!(answered, ["alpha", "beta"]);
            assert_eq!(failed, ["gamma"]);
        });
    });
}

// ---------------------------------------------------------------------
// A control socket on a path.

/// A service takes commands on a Unix socket, as daemons do
/// (`/run/app.sock`: who may connect is the file's permissions). Each
/// client's reader and writer are two tasks on the owned halves of one
/// `UnixStream`, joined by a channel; the writer ends when the reader
/// drops its sender, and dropping the write half gives the client end of
/// file.
#[test]
fn a_unix_control_socket_answers_commands_through_split_halves() {
    with_deadline(20, || {
        let dir = std::env::temp_dir().join(format!("coop-newcomer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("control.sock");
        coop::block_on(async {
            let listener = UnixListener::bind(&path).unwrap();
            coop::spawn(async move {
                let commands = Rc::new(Cell::new(0u32));
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    let (rd, mut wr) = stream.into_split();
                    let (tx, mut replies) = mpsc::unbounded::<String>();
                    let commands = commands.clone();
                    coop::spawn(async move {
                        let mut lines = BufReader::new(rd).lines();
                        while let Some(Ok(command)) = lines.next().await {
                            commands.set(commands.get() + 1);
                            let reply = match command.as_str() {
                                "ping" => "pong".to_owned(),
                                "count" => commands.get().to_string(),
                                other => format!("unknown command: {other}"),
                            };
                            tx.unbounded_send(reply).unwrap();
                        }
                    });
                    coop::spawn(async move {
                        while let Some(reply) = replies.next().await {
                            wr.write_all(format!("{reply}\n").as_bytes()).await.unwrap();
                        }
                    });
                }
            });

            let mut client = UnixStream::connect(&path).await.unwrap();
            client.write_all(b"ping\ncount\nreboot\n").await.unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            let mut replies = String::new();
            client.read_to_string(&mut replies).await.unwrap();
            assert_eq!(replies, "pong\n2\nunknown command: reboot\n");
        });
        std::fs::remove_dir_all(&dir).unwrap();
    });
}
