//! A TCP forwarder between a daemon and PostgreSQL that can stop forwarding without closing anything:
//! a network partition as the daemon sees it (its queries go out, no answer comes back, no error
//! either).

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub(crate) struct Cable {
    url: String,
    partitioned: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl Cable {
    /// A forwarder to the server of `url` (a `postgres://` URL naming its host and port).
    pub(crate) async fn to(url: &str) -> Self {
        let config: tokio_postgres::Config = url.parse().unwrap();
        let (Some(tokio_postgres::config::Host::Tcp(host)), Some(port)) =
            (config.get_hosts().first(), config.get_ports().first())
        else {
            panic!("the test database URL names no TCP host and port: {url}");
        };
        let upstream = format!("{host}:{port}");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = listener.local_addr().unwrap();
        assert!(url.contains(&upstream), "cannot redirect {url}: it does not contain `{upstream}`");
        let url = url.replacen(&upstream, &local.to_string(), 1);
        let (partitioned, watching) = watch::channel(false);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (watching, upstream) = (watching.clone(), upstream.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else { return };
                    let ((from_client, to_client), (from_server, to_server)) =
                        (client.into_split(), server.into_split());
                    tokio::join!(
                        pump(from_client, to_server, watching.clone()),
                        pump(from_server, to_client, watching)
                    );
                });
            }
        });
        Self { url, partitioned, accept }
    }

    /// The URL that goes through the cable.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Stops forwarding in both directions; connections stay open.
    pub(crate) fn partition(&self) {
        self.partitioned.send_replace(true);
    }

    pub(crate) fn heal(&self) {
        self.partitioned.send_replace(false);
    }
}

impl Drop for Cable {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Copies `from` to `to`, holding what it read while partitioned.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut partitioned: watch::Receiver<bool>) {
    let mut buf = vec![0; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                // A closed connection is news too: it waits for the partition to heal.
                let _ = partitioned.wait_for(|p| !*p).await;
                return;
            }
            Ok(n) => n,
        };
        if partitioned.wait_for(|p| !*p).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
