//! # nosyntask workflows
//!
//! The NanoStory workflows on the nosyntask engine: storyboards, character and scene extraction,
//! character views, scene images, first and last frames, shot videos and prompts. Each module
//! holds one workflow's definition (params, steps, attempts, timeout, uniqueness), its handler and
//! the prompts it sends; `common` holds what they share.
//!
//! Handlers only see the engine's model ports, so they run the same against real providers and
//! the offline simulated models:
//!
//! ```no_run
//! # fn wire(models: std::sync::Arc<dyn nosyntask_engine::ports::ModelCatalog>) {
//! let registry = nosyntask_workflows::registry(models);
//! assert_eq!(registry.all().len(), nosyntask_workflows::WORKFLOW_TYPES.len());
//! # }
//! ```

mod batch;
mod character_views;
mod common;

/// The name of the list of a kind's configured models that model params take their values from.
pub use common::models::list as model_list;
mod extraction;
mod frames;
mod prompt_generate;
mod scene_image;
mod scene_video;
mod script_to_storyboard;
mod single_frame;
mod storyboard;
mod style_analysis;
mod text;

use std::sync::Arc;

use nosyntask_engine::Registry;
use nosyntask_engine::ports::ModelCatalog;

use extraction::characters::Characters;
use extraction::scenes::Scenes;

/// The workflow types, in the order `GET /api/workflows/types` lists them.
pub const WORKFLOW_TYPES: [&str; 15] = [
    storyboard::WORKFLOW,
    "character_extraction",
    "scene_extraction",
    character_views::WORKFLOW,
    scene_image::WORKFLOW,
    frames::WORKFLOW,
    scene_video::WORKFLOW,
    prompt_generate::WORKFLOW,
    script_to_storyboard::WORKFLOW,
    text::script::WORKFLOW,
    single_frame::WORKFLOW,
    text::smart_parse::WORKFLOW,
    text::camera_run::WORKFLOW,
    batch::frames::WORKFLOW,
    batch::videos::WORKFLOW,
];

/// Every NanoStory workflow, its handlers calling the models of `models`.
pub fn registry(models: Arc<dyn ModelCatalog>) -> Registry {
    let mut registry = Registry::new();
    registry.register(storyboard::definition(models.clone()));
    registry.register(extraction::definition::<Characters>(models.clone()));
    registry.register(extraction::definition::<Scenes>(models.clone()));
    registry.register(character_views::definition(models.clone()));
    registry.register(scene_image::definition(models.clone()));
    registry.register(frames::definition(models.clone()));
    registry.register(scene_video::definition(models.clone()));
    registry.register(prompt_generate::definition(models.clone()));
    registry.register(script_to_storyboard::definition(models.clone()));
    registry.register(text::script::definition(models.clone()));
    registry.register(single_frame::definition(models.clone()));
    registry.register(text::smart_parse::definition(models.clone()));
    registry.register(text::camera_run::definition(models.clone()));
    registry.register(batch::frames::definition(models.clone()));
    registry.register(batch::videos::definition(models));
    registry
}
