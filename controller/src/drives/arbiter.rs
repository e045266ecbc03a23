//! Which job a free drive serves next. A drive burns one disc at a time; when it frees up, the
//! waiting job with the highest effective priority (priority plus ageing, the rule admission
//! uses) gets it, ties going to the older job. Jobs take their next volume only once they hold
//! a drive (work stealing from each job's shared queue), so a slow drive never sits on a volume
//! another drive could burn.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::jobs::admission::effective_priority;

/// What a job brings to the queue of a drive.
#[derive(Debug, Clone, Copy)]
pub struct Claim {
    pub job_id: i64,
    pub priority: i64,
    /// When the job was created: its age raises its priority.
    pub created: OffsetDateTime,
}

struct Waiter {
    id: u64,
    drive: String,
    claim: Claim,
    grant: oneshot::Sender<()>,
}

#[derive(Default)]
struct Pool {
    busy: HashSet<String>,
    waiters: Vec<Waiter>,
    next_id: u64,
}

/// The drives' arbiter, shared by every job of the engine; also holds the robot's arm, which
/// moves one disc at a time for all drives.
pub struct DrivePool {
    pool: Mutex<Pool>,
    ageing_minutes: u32,
    clock: Arc<dyn crate::clock::Clock>,
    /// Held for a whole unload (drive → printer → print → bin), since the printer holds one disc.
    pub arm: tokio::sync::Mutex<()>,
}

/// A drive held by one job; dropping it hands the drive to the next waiter.
pub struct Lease {
    pool: Arc<DrivePool>,
    drive: String,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool.release(&self.drive);
    }
}

/// A waiter's place in the queue; dropped before its grant is used (the job no longer needs the
/// drive), it leaves the queue or passes an already granted drive on.
struct Pending {
    pool: Arc<DrivePool>,
    id: u64,
    drive: String,
    grant: Option<oneshot::Receiver<()>>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let Some(mut grant) = self.grant.take() else {
            return;
        };
        let mut pool = self.pool.lock();
        if let Some(at) = pool.waiters.iter().position(|w| w.id == self.id) {
            pool.waiters.remove(at);
        } else if grant.try_recv().is_ok() {
            drop(pool);
            self.pool.release(&self.drive);
        }
    }
}

impl DrivePool {
    pub fn new(ageing_minutes: u32, clock: Arc<dyn crate::clock::Clock>) -> Arc<DrivePool> {
        Arc::new(DrivePool {
            pool: Mutex::new(Pool::default()),
            ageing_minutes,
            clock,
            arm: tokio::sync::Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a job holds the drive right now.
    pub fn busy(&self, drive: &str) -> bool {
        self.lock().busy.contains(drive)
    }

    /// Waits until the drive is this job's. Cancel-safe: dropping the future gives up the place.
    pub async fn acquire(self: &Arc<Self>, drive: &str, claim: Claim) -> Lease {
        let mut pending = {
            let mut pool = self.lock();
            if !pool.busy.contains(drive) {
                pool.busy.insert(drive.to_string());
                return Lease {
                    pool: Arc::clone(self),
                    drive: drive.to_string(),
                };
            }
            pool.next_id += 1;
            let id = pool.next_id;
            let (tx, rx) = oneshot::channel();
            pool.waiters.push(Waiter {
                id,
                drive: drive.to_string(),
                claim,
                grant: tx,
            });
            Pending {
                pool: Arc::clone(self),
                id,
                drive: drive.to_string(),
                grant: Some(rx),
            }
        };
        let grant = pending.grant.as_mut().expect("set above");
        // The sender lives in the queue until it is used, so this only fails if the pool is
        // gone, which it is not while `self` is alive.
        let _ = grant.await;
        pending.grant = None;
        Lease {
            pool: Arc::clone(self),
            drive: drive.to_string(),
        }
    }

    /// Whether the holder of `drive`, wanting it for another disc, should let it go: a waiting
    /// job ranks at least as high. Equal ranks take turns, so jobs of the same priority share
    /// the drives disc by disc instead of one finishing before the other starts.
    pub fn should_yield(&self, drive: &str, holder: Claim) -> bool {
        let now = self.clock.now();
        let mine = self.rank(holder, now);
        self.lock()
            .waiters
            .iter()
            .any(|w| w.drive == drive && self.rank(w.claim, now) >= mine)
    }

    /// Hands the drive to the best waiter, or marks it free.
    fn release(&self, drive: &str) {
        let now = self.clock.now();
        let mut pool = self.lock();
        loop {
            let best = pool
                .waiters
                .iter()
                .enumerate()
                .filter(|(_, w)| w.drive == drive)
                .max_by(|(_, a), (_, b)| {
                    self.rank(a.claim, now)
                        .cmp(&self.rank(b.claim, now))
                        // Ties: the older job, then the earlier waiter.
                        .then_with(|| b.claim.created.cmp(&a.claim.created))
                        .then_with(|| b.id.cmp(&a.id))
                })
                .map(|(at, _)| at);
            let Some(at) = best else {
                pool.busy.remove(drive);
                return;
            };
            let waiter = pool.waiters.remove(at);
            tracing::debug!(drive, job_id = waiter.claim.job_id, "drive handed over");
            if waiter.grant.send(()).is_ok() {
                return;
            }
        }
    }

    fn rank(&self, claim: Claim, now: OffsetDateTime) -> i64 {
        effective_priority(claim.priority, now - claim.created, self.ageing_minutes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SimulatedClock;
    use time::macros::datetime;

    fn claim(job_id: i64, priority: i64, created: OffsetDateTime) -> Claim {
        Claim {
            job_id,
            priority,
            created,
        }
    }

    /// Jobs wait for a busy drive; it goes to the highest effective priority, ties to the older
    /// job, and a low-priority job that waited long enough overtakes a fresh urgent one.
    #[tokio::test]
    async fn a_free_drive_goes_to_the_best_waiting_job() {
        let t0 = datetime!(2026-03-02 09:00 +8);
        let clock = Arc::new(SimulatedClock::new(t0));
        let pool = DrivePool::new(30, clock.clone());
        let first = pool.acquire("bd1", claim(1, 5, t0)).await;
        assert!(pool.busy("bd1"));
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        // Job 2: priority 1, created 4 h before t0 (ages +8 → 9 at t0; 10 after 30 more min).
        // Job 3: priority 9, fresh. Job 4: priority 5, older than job 5 (also 5).
        for (job, priority, created) in [
            (2, 1, t0 - time::Duration::hours(4)),
            (3, 9, t0),
            (5, 5, t0 + time::Duration::minutes(1)),
            (4, 5, t0 - time::Duration::minutes(1)),
        ] {
            let pool = Arc::clone(&pool);
            let order = Arc::clone(&order);
            tasks.push(tokio::spawn(async move {
                let lease = pool.acquire("bd1", claim(job, priority, created)).await;
                order.lock().unwrap().push(job);
                tokio::task::yield_now().await;
                drop(lease);
            }));
            tokio::task::yield_now().await;
        }
        // A waiter that gives up leaves the queue without taking the drive.
        let quitter = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move {
                pool.acquire("bd1", claim(9, 9, t0 - time::Duration::hours(9)))
                    .await
            }
        });
        tokio::task::yield_now().await;
        quitter.abort();
        let _ = quitter.await;
        clock.advance(time::Duration::minutes(30));
        drop(first);
        for task in tasks {
            task.await.unwrap();
        }
        // At t0+30 min: job 2 counts 1 + 9 = 10 over job 3's 9 + 1 = 10 → tie, job 2 is older.
        assert_eq!(*order.lock().unwrap(), vec![2, 3, 4, 5]);
        assert!(!pool.busy("bd1"));
    }

    /// A job holding a drive keeps it for its next disc against lower-ranked waiters and hands
    /// it over to an equal or higher one.
    #[tokio::test]
    async fn a_holder_yields_only_to_an_equal_or_better_job() {
        let t0 = datetime!(2026-03-02 09:00 +8);
        let pool = DrivePool::new(30, Arc::new(SimulatedClock::new(t0)));
        let holder = claim(1, 7, t0);
        let lease = pool.acquire("bd1", holder).await;
        assert!(!pool.should_yield("bd1", holder), "nobody waits");
        let low = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { drop(pool.acquire("bd1", claim(2, 6, t0)).await) }
        });
        tokio::task::yield_now().await;
        assert!(!pool.should_yield("bd1", holder), "6 < 7");
        // Waiting for another drive does not count.
        let other = tokio::spawn({
            let pool = Arc::clone(&pool);
            let busy = pool.acquire("bd2", claim(9, 9, t0)).await;
            async move {
                drop(pool.acquire("bd2", claim(3, 9, t0)).await);
                drop(busy);
            }
        });
        tokio::task::yield_now().await;
        assert!(!pool.should_yield("bd1", holder));
        let same = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { drop(pool.acquire("bd1", claim(4, 7, t0)).await) }
        });
        tokio::task::yield_now().await;
        assert!(pool.should_yield("bd1", holder), "7 = 7: take turns");
        drop(lease);
        same.await.unwrap();
        low.await.unwrap();
        other.abort();
        let _ = other.await;
    }

    #[tokio::test]
    async fn different_drives_do_not_wait_for_each_other() {
        let t0 = datetime!(2026-03-02 09:00 +8);
        let pool = DrivePool::new(30, Arc::new(SimulatedClock::new(t0)));
        let a = pool.acquire("bd1", claim(1, 5, t0)).await;
        let b = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            pool.acquire("bd2", claim(1, 5, t0)),
        )
        .await
        .expect("bd2 is free");
        drop((a, b));
        assert!(!pool.busy("bd1") && !pool.busy("bd2"));
    }
}
