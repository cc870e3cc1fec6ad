//! # nosyntask beside NanoStory
//!
//! Everything that knows NanoStory's schema lives here, so the engine stays free of it:
//!
//! - [`upgrade`]: NanoStory's database already has a `workflow_jobs` and a `generation_tasks`
//!   table of its own engine; the upgrade moves them aside and copies their history into the
//!   engine's tables (see the module for the steps).
//! - NanoStory mode ([`Mode`]): on NanoStory's own database, workflows started with an id read
//!   the row it names ([`RowParams`]: a shot's prompt and frames from `storyboardId` alone, a
//!   script's content, a character's or a scene's description), and each workflow's results
//!   land where NanoStory's own engine wrote them ([`ResultWriter`]: characters' views, scenes'
//!   images, storyboards' frames and videos, a script's content, the storyboards and scenes of
//!   `storyboard_generation`), in the transaction that stores the task's result.
//! - [`entities`]: sea-orm entities of the NanoStory tables the mode reads and writes.

pub mod entities;
mod media;
mod mode;
mod params;
mod results;
mod upgrade;

pub use media::MediaUrls;
pub use mode::{Mode, ModeError, REQUIRED_TABLES};
pub use params::RowParams;
pub use results::ResultWriter;
pub use upgrade::{INTERRUPTED, LEGACY_JOBS, LEGACY_TASKS, UpgradeError, UpgradeReport, upgrade};
