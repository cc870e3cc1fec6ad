//! Switching NanoStory mode on for a store on NanoStory's database.

use std::sync::Arc;

use nosyntask_engine::StoreError;
use nosyntask_engine::ports::ParamsSource;
use nosyntask_store::Store;

use crate::media::MediaUrls;
use crate::params::RowParams;
use crate::results::ResultWriter;

/// NanoStory's tables the mode reads and writes.
pub const REQUIRED_TABLES: [&str; 5] =
    ["projects", "scripts", "storyboards", "characters", "scenes"];

/// Why NanoStory mode cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ModeError {
    #[error(
        "the database has no `{0}` table: NanoStory mode runs on NanoStory's own database \
         (created from its backend/initial_database.sql)"
    )]
    MissingTable(&'static str),
    #[error("another completion hook is registered on this store")]
    HookTaken,
    #[error("cannot read the database: {0}")]
    Store(#[from] StoreError),
}

/// NanoStory mode on one store.
pub struct Mode;

impl Mode {
    /// Checks that `store`'s database is NanoStory's, registers the [`ResultWriter`] as the
    /// store's completion hook and gives back the [`RowParams`] to hand to the engine
    /// ([`Engine::with_params_source`](nosyntask_engine::Engine::with_params_source)).
    pub async fn enable(
        store: &Store,
        media: MediaUrls,
    ) -> Result<Arc<dyn ParamsSource>, ModeError> {
        for table in REQUIRED_TABLES {
            if !store.has_table(table).await? {
                return Err(ModeError::MissingTable(table));
            }
        }
        store
            .set_transaction_hook(Arc::new(ResultWriter::new(media)))
            .map_err(|_| ModeError::HookTaken)?;
        Ok(Arc::new(RowParams::new(store.connection().clone())))
    }
}
