//! `scene_extraction` (场景提取): the locations of the script, described so that an image model
//! can paint each as an empty set.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Extraction, Named, fill};
use crate::common::language::Language;
use crate::common::lenient;

/// Scene (location) extraction.
pub(crate) struct Scenes;

/// One location, as the frontend reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Location {
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub description: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub environment: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub lighting: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub mood: String,
}

impl Named for Location {
    fn name(&self) -> &str {
        &self.name
    }

    fn absorb(&mut self, other: Self) {
        fill(&mut self.description, other.description);
        fill(&mut self.environment, other.environment);
        fill(&mut self.lighting, other.lighting);
        fill(&mut self.mood, other.mood);
    }
}

impl Extraction for Scenes {
    type Item = Location;
    const WORKFLOW: &'static str = "scene_extraction";
    const NAME: &'static str = "场景提取";
    const TASK_TYPE: &'static str = "scene_extraction";
    const RESULT_KEY: &'static str = "scenes";
    const LIST_KEYS: &'static [&'static str] = &["scenes", "locations", "places"];
    const TASK: &'static str = "scene extraction";

    fn system(language: Language) -> String {
        format!(
            "You are a production designer. You read a script and list every distinct location \
where it takes place, so that each can be painted as a set before the characters are added.

Rules:
1. One entry per physical place. The same place at another time of day is the same entry; \
mention the times in its description. Inside and outside of a building are different places.
2. name is short and the same the script would use (\"山神庙内\", \"Mountain temple, interior\").
3. description says what the place is and what happens there in the story.
4. environment describes the set only, without people: architecture or landscape, objects, \
materials, weather, era.
5. lighting names light sources, direction, colour and strength (\"a weak campfire, warm \
flickering light from below\").
6. mood is the atmosphere in a few words.

{language}

Answer with JSON only, an object with a \"scenes\" array, exactly in this shape:
{example}",
            language = language.instruction(),
            example = Self::example(language),
        )
    }

    fn user(source: &str, from_shots: bool, language: Language) -> String {
        match (from_shots, language) {
            (false, Language::Chinese) => {
                format!("请提取下面剧本中的所有场景。\n\n【剧本】\n{source}")
            }
            (true, Language::Chinese) => {
                format!("请从下面的分镜列表中提取所有场景。\n\n【分镜】\n{source}")
            }
            (false, Language::English) => {
                format!("List every location of this script.\n\nSCRIPT:\n{source}")
            }
            (true, Language::English) => {
                format!("List every location of this storyboard.\n\nSHOTS:\n{source}")
            }
        }
    }

    fn example(language: Language) -> Value {
        match language {
            Language::Chinese => json!({"scenes": [{
                "name": "山神庙内",
                "description": "荒山上一座破败的山神庙，林冲在此避雪过夜",
                "environment": "残破的木结构庙宇，神像斑驳，供桌积灰，地上铺着稻草，窗棂破损",
                "lighting": "中央一堆微弱的篝火，暖色光从下方摇曳，其余角落昏暗",
                "mood": "凄凉、压抑"
            }]}),
            Language::English => json!({"scenes": [{
                "name": "Mountain temple, interior",
                "description": "A ruined temple on a bare hill where Lin Chong shelters from the snow for the night",
                "environment": "Decaying timber hall, a flaking idol, a dusty altar table, straw on the floor, broken window lattice",
                "lighting": "A weak campfire in the centre, warm flickering light from below, dark corners",
                "mood": "Bleak, oppressive"
            }]}),
        }
    }
}
