//! The storyboard prompt: a script in, a list of shots out, each one still picture that an image
//! model can draw and a video model can animate.

use serde_json::{Value, json};

use crate::common::language::Language;

pub(super) fn system(language: Language) -> String {
    let shot_types = language.pick(
        "特写 / 近景 / 中景 / 全景 / 远景 / 俯拍 / 仰拍 / 过肩",
        "close-up / medium close-up / medium shot / full shot / wide shot / high angle / low angle / over-the-shoulder",
    );
    format!(
        "You are a professional film storyboard artist who follows the rules of continuity \
editing. You turn a script into a shot list in which neighbouring shots cut together seamlessly.

Rules:
1. Each shot is one still picture that can be drawn on its own: describe who is where, doing \
what, seen from where, in what light. The description must be detailed enough to generate an image.
2. Every line of dialogue gets its own shot of the speaker; add reaction shots of the listener.
3. Split an action into preparation, action and result. A shot with movement has hasAction=true \
and describes its first moment in startFrame and its last moment in endFrame; a shot without \
movement has hasAction=false and empty startFrame and endFrame.
4. Open every new location with an establishing wide shot, then move closer. Do not jump \
straight from a close-up to a wide shot within one location.
5. Keep continuity: a character's position, posture, facing and props at the start of a shot \
match the end of the previous shot in the same location; lasting changes (a broken cup, an open \
door) stay in later shots of that location.
6. shotType is one of: {shot_types}.
7. duration is the suggested length in whole seconds, between 1 and 10.
8. characters lists the names of the characters visible in the shot (empty for an empty shot); \
use the same name for a character in every shot. location is the place, named the same way in \
every shot there. emotion is the mood in a few words.
9. dialogue is the line spoken in the shot, or an empty string.
10. Cover the whole script, in order. Do not summarise or skip scenes.

{language}

Answer with JSON only, an object with a \"scenes\" array, exactly in this shape:
{example}",
        language = language.instruction(),
        example = example(language),
    )
}

pub(super) fn user(title: Option<&str>, script: &str, language: Language) -> String {
    match (title, language) {
        (Some(title), Language::Chinese) => {
            format!("请把剧本《{title}》拆分为分镜镜头。\n\n【剧本】\n{script}")
        }
        (None, Language::Chinese) => {
            format!("请把下面的剧本拆分为分镜镜头。\n\n【剧本】\n{script}")
        }
        (Some(title), Language::English) => {
            format!("Break the script \"{title}\" down into shots.\n\nSCRIPT:\n{script}")
        }
        (None, Language::English) => {
            format!("Break this script down into shots.\n\nSCRIPT:\n{script}")
        }
    }
}

/// The shape asked for: two shots, one still and one with action.
pub(super) fn example(language: Language) -> Value {
    match language {
        Language::Chinese => json!({"scenes": [
            {
                "order": 1, "shotType": "远景",
                "description": "深夜，暴风雪持续肆虐，破败的山神庙孤立在荒山中，庙顶积雪厚重",
                "hasAction": false, "startFrame": "", "endFrame": "", "dialogue": "",
                "duration": 3, "characters": [], "location": "山神庙外", "emotion": "萧瑟"
            },
            {
                "order": 2, "shotType": "中景",
                "description": "庙内篝火微弱，林冲从稻草堆上翻身坐起，伸手去握墙边的花枪",
                "hasAction": true, "startFrame": "林冲侧卧在稻草堆上，双眼圆睁",
                "endFrame": "林冲坐起，右手握住花枪", "dialogue": "谁在外面？",
                "duration": 4, "characters": ["林冲"], "location": "山神庙内", "emotion": "警觉"
            }
        ]}),
        Language::English => json!({"scenes": [
            {
                "order": 1, "shotType": "wide shot",
                "description": "Night, a snowstorm rages without pause around a ruined mountain temple standing alone on a bare hill",
                "hasAction": false, "startFrame": "", "endFrame": "", "dialogue": "",
                "duration": 3, "characters": [], "location": "outside the temple", "emotion": "desolate"
            },
            {
                "order": 2, "shotType": "medium shot",
                "description": "By a weak fire inside the temple, Lin Chong sits up from the straw and reaches for the spear against the wall",
                "hasAction": true, "startFrame": "Lin Chong lies on his side in the straw, eyes wide open",
                "endFrame": "Lin Chong sits upright, his right hand gripping the spear", "dialogue": "Who's out there?",
                "duration": 4, "characters": ["Lin Chong"], "location": "inside the temple", "emotion": "alert"
            }
        ]}),
    }
}
