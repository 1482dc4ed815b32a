//! The Notifications API subscriber against genesys-sim: it keeps its channel alive by renewing the subscriptions
//! before the channel expires, and when a channel expires anyway it creates and subscribes a new one.

use std::sync::Arc;
use std::time::Duration;

use genesys::notifications::{self, NotificationItem, NotificationsConfig};
use genesys::{ClientConfig, GenesysClient};
use genesys_sim::{GenesysSim, GenesysSimConfig, Media};
use tokio::sync::{mpsc, watch};

async fn start(
    channel_ttl: Duration,
    resubscribe_every: Duration,
) -> (
    GenesysSim,
    mpsc::Receiver<NotificationItem>,
    watch::Sender<bool>,
) {
    let sim = GenesysSim::start(GenesysSimConfig {
        heartbeat_interval: Duration::from_millis(100),
        channel_ttl,
        ..Default::default()
    })
    .await
    .expect("sim");
    sim.add_user("u1", "User One", "u1@example.com");
    let defaults = GenesysSimConfig::default();
    let client = Arc::new(
        GenesysClient::new(ClientConfig::new(
            sim.base_url(),
            sim.base_url(),
            defaults.client_id,
            defaults.client_secret,
        ))
        .expect("client"),
    );
    let config = NotificationsConfig {
        ping_after: Duration::from_millis(500),
        silence_timeout: Duration::from_secs(1),
        resubscribe_every,
        backoff_min: Duration::from_millis(50),
        ..Default::default()
    };
    let (_topics_tx, topics) = watch::channel(vec!["v2.users.u1.conversations".to_string()]);
    let (tx, rx) = mpsc::channel(64);
    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(async move {
        let _keep = _topics_tx;
        notifications::run(client, config, topics, tx, shutdown).await;
    });
    (sim, rx, stop)
}

/// Waits for the next event, skipping connection items.
async fn next_event(rx: &mut mpsc::Receiver<NotificationItem>) -> String {
    loop {
        let item = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("an event in time")
            .expect("subscriber running");
        if let NotificationItem::Event { topic, .. } = item {
            return topic;
        }
    }
}

async fn connected(rx: &mut mpsc::Receiver<NotificationItem>) -> bool {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(NotificationItem::Connected { new_channel, .. })) => return new_channel,
            Ok(Some(_)) => continue,
            _ => panic!("no connection"),
        }
    }
}

#[tokio::test]
async fn renewing_the_subscriptions_keeps_the_channel_alive() {
    let (sim, mut rx, stop) = start(Duration::from_millis(800), Duration::from_millis(250)).await;
    assert!(connected(&mut rx).await, "a new channel first");
    tokio::time::sleep(Duration::from_secs(3)).await;
    sim.offer("c1", "u1", Media::Call, "inbound", None);
    assert_eq!(next_event(&mut rx).await, "v2.users.u1.conversations");
    let stats = sim.stats();
    assert_eq!(stats.channels_created, 1, "{stats:?}");
    assert_eq!(stats.ws_connections, 1, "{stats:?}");
    assert!(stats.subscription_puts >= 5, "{stats:?}");
    let _ = stop.send(true);
}

#[tokio::test]
async fn an_expired_channel_is_replaced_and_a_drop_reuses_the_live_one() {
    let (sim, mut rx, stop) = start(Duration::from_secs(3600), Duration::from_secs(3000)).await;
    assert!(connected(&mut rx).await);
    sim.drop_sockets();
    assert!(
        !connected(&mut rx).await,
        "a drop reconnects to the same channel"
    );
    sim.expire_channels();
    assert!(connected(&mut rx).await, "an expired channel is replaced");
    sim.offer("c1", "u1", Media::Call, "inbound", None);
    assert_eq!(next_event(&mut rx).await, "v2.users.u1.conversations");
    assert_eq!(sim.stats().channels_created, 2);
    assert_eq!(sim.subscribed_topics(), ["v2.users.u1.conversations"]);
    let _ = stop.send(true);
}
