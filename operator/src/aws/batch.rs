//! Coalescing of concurrent reads into batched AWS calls.
//!
//! AWS has batch reads (DescribeServices takes 10 services, DescribeTags 20 ARNs, DescribeRepositories
//! 100 names) but the engine reconciles one ApiDeployment at a time. A [`Batcher`] collects the keys
//! asked for by concurrent reconciles during a short window (or until a batch is full) and answers them
//! all from one call, so a fleet resync costs a fraction of a read per ApiDeployment.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::oneshot;

use super::AwsError;

type Waiter<V> = oneshot::Sender<Result<Option<V>, AwsError>>;
type Pending<G, K, V> = Arc<Mutex<HashMap<G, Vec<(K, Waiter<V>)>>>>;
type Loader<G, K, V> = dyn Fn(G, Vec<K>) -> BoxFuture<'static, Result<HashMap<K, V>, AwsError>> + Send + Sync;

/// Batches loads of keys `K` within a group `G` (a cluster, a registry, a listener) into one call.
pub struct Batcher<G, K, V> {
    pending: Pending<G, K, V>,
    loader: Arc<Loader<G, K, V>>,
    max_batch: usize,
    window: Duration,
}

impl<G, K, V> Batcher<G, K, V>
where
    G: Clone + Eq + Hash + Send + 'static,
    K: Clone + Eq + Hash + Send + 'static,
    V: Clone + Send + 'static,
{
    /// A batcher calling `loader` with at most `max_batch` distinct keys, after waiting `window` for more
    /// keys to arrive. The loader returns the found keys; a key it leaves out is answered `None`.
    pub fn new<F>(max_batch: usize, window: Duration, loader: F) -> Self
    where
        F: Fn(G, Vec<K>) -> BoxFuture<'static, Result<HashMap<K, V>, AwsError>> + Send + Sync + 'static,
    {
        Batcher { pending: Arc::new(Mutex::new(HashMap::new())), loader: Arc::new(loader), max_batch, window }
    }

    /// Load `key` of `group`, together with whatever else is asked for at the same time.
    pub async fn load(&self, group: G, key: K) -> Result<Option<V>, AwsError> {
        let (tx, rx) = oneshot::channel();
        let full = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            let queue = pending.entry(group.clone()).or_default();
            let first = queue.is_empty();
            queue.push((key, tx));
            let distinct = distinct_keys(queue);
            if distinct >= self.max_batch {
                pending.remove(&group)
            } else {
                if first {
                    self.spawn_flush_after_window(group.clone());
                }
                None
            }
        };
        if let Some(batch) = full {
            tokio::spawn(run(self.loader.clone(), group, batch));
        }
        rx.await.unwrap_or_else(|_| Err(AwsError::new("batch", "load", super::ErrorKind::Other, "batch dropped")))
    }

    fn spawn_flush_after_window(&self, group: G) {
        let pending = self.pending.clone();
        let loader = self.loader.clone();
        let window = self.window;
        tokio::spawn(async move {
            tokio::time::sleep(window).await;
            let batch = pending.lock().unwrap_or_else(|e| e.into_inner()).remove(&group);
            if let Some(batch) = batch {
                run(loader, group, batch).await;
            }
        });
    }
}

fn distinct_keys<K: Eq + Hash, W>(queue: &[(K, W)]) -> usize {
    let mut seen = std::collections::HashSet::new();
    queue.iter().filter(|(k, _)| seen.insert(k)).count()
}

async fn run<G, K, V>(loader: Arc<Loader<G, K, V>>, group: G, batch: Vec<(K, Waiter<V>)>)
where
    K: Clone + Eq + Hash,
    V: Clone,
{
    let mut keys: Vec<K> = Vec::new();
    for (k, _) in &batch {
        if !keys.contains(k) {
            keys.push(k.clone());
        }
    }
    match loader(group, keys).await {
        Ok(found) => {
            for (k, tx) in batch {
                let _ = tx.send(Ok(found.get(&k).cloned()));
            }
        }
        Err(e) => {
            for (_, tx) in batch {
                let _ = tx.send(Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn batcher(calls: Arc<AtomicUsize>, max: usize) -> Batcher<&'static str, u32, u32> {
        Batcher::new(max, Duration::from_millis(5), move |_group, keys: Vec<u32>| {
            calls.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                assert!(keys.len() <= max, "batch of {} over {max}", keys.len());
                // Odd keys "exist".
                Ok(keys.into_iter().filter(|k| k % 2 == 1).map(|k| (k, k * 10)).collect())
            })
        })
    }

    #[tokio::test]
    async fn concurrent_loads_share_calls_of_at_most_max_keys() {
        let calls = Arc::new(AtomicUsize::new(0));
        let b = Arc::new(batcher(calls.clone(), 10));
        let handles: Vec<_> = (0..25u32)
            .map(|k| {
                let b = b.clone();
                tokio::spawn(async move { (k, b.load("c1", k).await) })
            })
            .collect();
        for h in handles {
            let (k, result) = h.await.expect("task");
            assert_eq!(result.expect("ok"), if k % 2 == 1 { Some(k * 10) } else { None });
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3, "25 keys in batches of 10");
    }

    #[tokio::test]
    async fn groups_are_loaded_separately_and_errors_reach_every_waiter() {
        let calls = Arc::new(AtomicUsize::new(0));
        let b = batcher(calls.clone(), 10);
        let (x, y) = tokio::join!(b.load("a", 1), b.load("b", 1));
        assert_eq!((x.expect("a"), y.expect("b")), (Some(10), Some(10)));
        assert_eq!(calls.load(Ordering::SeqCst), 2);

        let failing: Batcher<(), u32, u32> = Batcher::new(10, Duration::from_millis(1), |_, _| {
            Box::pin(async { Err(AwsError::new("ecs", "DescribeServices", crate::aws::ErrorKind::Throttled, "slow")) })
        });
        let (x, y) = tokio::join!(failing.load((), 1), failing.load((), 2));
        assert_eq!(x.expect_err("fails").kind, crate::aws::ErrorKind::Throttled);
        assert!(y.is_err());
    }
}
