//! The in-process lock table: one submission at a time checks and writes a
//! record, within this process.
//!
//! The table is process-wide, so every route guarding the same record (an
//! edit form, a delete button, a per-row form on a list page) serializes on
//! the same lock, whatever layer instance guards it. Entries are removed as
//! soon as nobody holds or waits for them.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use tokio::sync::OwnedMutexGuard;

/// Which record: the id of the key that digested it and its resource digest.
pub(crate) type LockKey = (u32, u64);

const SHARDS: usize = 16;

/// Hashes a [`LockKey`] by mixing its two numbers. The resource digest is
/// already a keyed hash (xxh3 under a subkey of the secret), so it is evenly
/// spread and nobody without the key can aim many records at one bucket;
/// SipHash on top of it was most of the table's cost.
#[derive(Default)]
struct MixHasher(u64);

impl Hasher for MixHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(23) ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

type Mutexed = Arc<tokio::sync::Mutex<()>>;

/// One shard of the table: the locks of records being written, and a few
/// free locks kept for the next records, so that an uncontended submission
/// allocates nothing here.
#[derive(Default)]
struct Table {
    held: HashMap<LockKey, Mutexed, BuildHasherDefault<MixHasher>>,
    spare: Vec<Mutexed>,
}

/// Free locks kept per shard.
const SPARE: usize = 4;

type Shard = Mutex<Table>;

static LOCKS: LazyLock<[Shard; SHARDS]> =
    LazyLock::new(|| std::array::from_fn(|_| Mutex::new(Table::default())));

fn shard(key: &LockKey) -> &'static Shard {
    // The digest's low bits pick the shard; the hasher mixes all of them.
    &LOCKS[(key.1 ^ u64::from(key.0)) as usize % SHARDS]
}

/// Held from the check until the handler's future completes.
pub(crate) struct LocalLock {
    key: LockKey,
    guard: Option<OwnedMutexGuard<()>>,
}

/// Waits at most `timeout` for the lock of `key`: `None` when another
/// submission held it all that time.
pub(crate) async fn lock_within(key: LockKey, timeout: Duration) -> Option<LocalLock> {
    let mutex = {
        let mut table = shard(&key).lock().unwrap_or_else(|e| e.into_inner());
        let Table { held, spare } = &mut *table;
        held.entry(key)
            .or_insert_with(|| spare.pop().unwrap_or_default())
            .clone()
    };
    // The waiting future owns the clone: gone when the wait ends either way.
    let acquired = tokio::time::timeout(timeout, mutex.lock_owned()).await;
    match acquired {
        Ok(guard) => Some(LocalLock {
            key,
            guard: Some(guard),
        }),
        Err(_) => {
            release(key);
            None
        }
    }
}

impl Drop for LocalLock {
    fn drop(&mut self) {
        drop(self.guard.take());
        release(self.key);
    }
}

/// Removes the entry of `key` when nobody holds or waits for it.
fn release(key: LockKey) {
    let mut table = shard(&key).lock().unwrap_or_else(|e| e.into_inner());
    let Table { held, spare } = &mut *table;
    // Only the table holds it (clones are made under the shard's lock, and
    // this holder's or waiter's is gone): nobody holds or waits for it, so
    // it is free and can serve another record.
    if let Entry::Occupied(entry) = held.entry(key) {
        if Arc::strong_count(entry.get()) == 1 {
            let free = entry.remove();
            if spare.len() < SPARE {
                spare.push(free);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lock(key: LockKey) -> LocalLock {
        lock_within(key, Duration::from_secs(3600)).await.unwrap()
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_entries_are_cleaned() {
        let key = (u32::MAX, 42);
        let first = lock(key).await;
        let waiter = tokio::spawn(async move {
            let _second = lock(key).await;
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "the second waits for the first");
        drop(first);
        waiter.await.unwrap();
        let table = shard(&key).lock().unwrap();
        assert!(
            !table.held.contains_key(&key),
            "the entry is removed when free"
        );
        assert!(
            table.spare.iter().all(|m| m.try_lock().is_ok()),
            "a spare lock is free"
        );
    }

    #[tokio::test]
    async fn a_wait_ends_at_the_timeout_and_leaves_no_entry() {
        let key = (u32::MAX - 2, 9);
        let first = lock(key).await;
        let second = lock_within(key, Duration::from_millis(20)).await;
        assert!(second.is_none(), "the first still holds it");
        drop(first);
        assert!(!shard(&key).lock().unwrap().held.contains_key(&key));
        assert!(lock_within(key, Duration::from_millis(20)).await.is_some());
    }

    #[tokio::test]
    async fn a_reused_lock_serves_one_record_only() {
        let (a, b) = ((u32::MAX - 1, 7), (u32::MAX - 1, 7 + SHARDS as u64));
        assert!(std::ptr::eq(shard(&a), shard(&b)), "same shard");
        drop(lock(a).await);
        // `b` takes the lock `a` left; `a` must still get one of its own.
        let _b = lock(b).await;
        let a_again = tokio::time::timeout(Duration::from_secs(5), lock(a)).await;
        assert!(a_again.is_ok(), "a record waits only for its own lock");
    }
}
