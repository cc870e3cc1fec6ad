//! Deleting artifacts no job refers to any more. Keys are content hashes, so two jobs that
//! generated the same bytes share one file: a file is deleted only when no remaining job (its
//! params, a task's params, result or checkpoint) names its key, in whatever URL form. Files
//! younger than a grace period are kept, because a running step may have stored one that its
//! task does not name yet.

use std::collections::HashSet;
use std::time::SystemTime;

use crate::key::{ArtifactKey, keys_in};
use crate::store::{ArtifactError, Artifacts};

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sweep {
    pub stored: usize,
    pub deleted: usize,
}

/// The keys `texts` (JSON columns of the remaining jobs and tasks) refer to.
pub fn referenced<'a>(texts: impl IntoIterator<Item = &'a str>) -> HashSet<ArtifactKey> {
    texts.into_iter().flat_map(keys_in).collect()
}

/// Deletes every stored artifact written before `written_before` that is not in `referenced`.
pub async fn sweep(
    artifacts: &Artifacts,
    referenced: &HashSet<ArtifactKey>,
    written_before: SystemTime,
) -> Result<Sweep, ArtifactError> {
    let stored = artifacts.list().await?;
    let mut sweep = Sweep {
        stored: stored.len(),
        deleted: 0,
    };
    for (key, written) in stored {
        if written < written_before && !referenced.contains(&key) {
            artifacts.delete(&key).await?;
            sweep.deleted += 1;
        }
    }
    Ok(sweep)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ArtifactConfig;
    use std::time::Duration;

    #[tokio::test]
    async fn only_unreferenced_old_files_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Artifacts::open(ArtifactConfig::local(dir.path())).unwrap();
        let kept = store
            .store(b"GIF89a-kept".to_vec(), "image/gif")
            .await
            .unwrap();
        let gone = store
            .store(b"GIF89a-gone".to_vec(), "image/gif")
            .await
            .unwrap();
        let job = format!(r#"{{"frontView":"http://h/files/{kept}?exp=1&sig=00"}}"#);
        let refs = referenced([job.as_str()]);
        let future = SystemTime::now() + Duration::from_secs(60);
        // Young files stay whatever refers to them.
        let none = sweep(&store, &refs, SystemTime::UNIX_EPOCH).await.unwrap();
        assert_eq!(
            none,
            Sweep {
                stored: 2,
                deleted: 0
            }
        );
        let once = sweep(&store, &refs, future).await.unwrap();
        assert_eq!(
            once,
            Sweep {
                stored: 2,
                deleted: 1
            }
        );
        assert!(store.read(&kept).await.unwrap().is_some());
        assert!(store.read(&gone).await.unwrap().is_none());
    }
}
