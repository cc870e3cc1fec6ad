//! `character_extraction` (角色提取): who appears in the script, described so that an image model
//! can draw them the same way every time.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Extraction, Named, fill};
use crate::common::language::Language;
use crate::common::lenient;

/// Character extraction.
pub(crate) struct Characters;

/// One character, as the frontend reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Character {
    #[serde(default, deserialize_with = "lenient::string")]
    pub name: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub appearance: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub personality: String,
    #[serde(default, deserialize_with = "lenient::string")]
    pub description: String,
}

impl Named for Character {
    fn name(&self) -> &str {
        &self.name
    }

    fn absorb(&mut self, other: Self) {
        fill(&mut self.appearance, other.appearance);
        fill(&mut self.personality, other.personality);
        fill(&mut self.description, other.description);
    }
}

impl Extraction for Characters {
    type Item = Character;
    const WORKFLOW: &'static str = "character_extraction";
    const NAME: &'static str = "角色提取";
    const TASK_TYPE: &'static str = "character_extraction";
    const RESULT_KEY: &'static str = "characters";
    const LIST_KEYS: &'static [&'static str] = &["characters", "roles", "people"];
    const TASK: &'static str = "character extraction";

    fn system(language: Language) -> String {
        format!(
            "You are a casting director and character designer. You read a script and list every \
character who appears in it or speaks, so that each can be drawn consistently in every shot.

Rules:
1. One entry per character. Use the name the script uses most; do not list one person twice \
under a nickname or title. Include minor characters who appear on screen; leave out people \
who are only mentioned.
2. appearance is what a camera sees: apparent age, gender, build, face, hair, clothing, \
colours and distinctive props. Where the script says nothing, infer what fits the story's \
era and setting, and keep it plausible.
3. personality is the character's temperament and manner in a few words.
4. description is the character's role in the story and relations to the others, in one or two \
sentences.

{language}

Answer with JSON only, an object with a \"characters\" array, exactly in this shape:
{example}",
            language = language.instruction(),
            example = Self::example(language),
        )
    }

    fn user(source: &str, from_shots: bool, language: Language) -> String {
        match (from_shots, language) {
            (false, Language::Chinese) => {
                format!("请提取下面剧本中的所有角色。\n\n【剧本】\n{source}")
            }
            (true, Language::Chinese) => {
                format!("请从下面的分镜列表中提取所有角色。\n\n【分镜】\n{source}")
            }
            (false, Language::English) => {
                format!("List every character of this script.\n\nSCRIPT:\n{source}")
            }
            (true, Language::English) => {
                format!("List every character of this storyboard.\n\nSHOTS:\n{source}")
            }
        }
    }

    fn example(language: Language) -> Value {
        match language {
            Language::Chinese => json!({"characters": [{
                "name": "林冲",
                "appearance": "三十多岁男性，身材魁梧，浓眉豹眼，黑色短须，头戴毡笠，身穿破旧棉袄，手持花枪",
                "personality": "隐忍刚烈，重情重义",
                "description": "八十万禁军教头，遭人陷害发配沧州，看守草料场"
            }]}),
            Language::English => json!({"characters": [{
                "name": "Lin Chong",
                "appearance": "Man in his thirties, tall and broad, thick eyebrows, short black beard, felt hat, worn padded coat, carries a spear",
                "personality": "Patient but fierce, loyal",
                "description": "A former arms instructor, framed and exiled, now guarding a fodder depot"
            }]}),
        }
    }
}
