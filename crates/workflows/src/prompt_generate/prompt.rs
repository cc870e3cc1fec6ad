//! The prompt-writing prompt: a plain description in, a generation prompt for an image or a
//! video model out.

use serde_json::{Value, json};

use super::MediaKind;
use crate::common::language::Language;

pub(super) fn system(kind: MediaKind, language: Language) -> String {
    let craft = match kind {
        MediaKind::Image => {
            "Write a prompt for a text-to-image model. Describe one still frame: the subject and \
what it is doing, composition and shot size, camera angle, setting, lighting, colour palette, \
the visual style, and a few quality terms. Use concrete visual nouns and adjectives in short \
comma-separated phrases, most important first; no story, no sounds, no text in the picture."
        }
        MediaKind::Video => {
            "Write a prompt for a text-to-video model that makes a clip of a few seconds. Describe \
the opening picture (subject, setting, lighting, style), then the motion in time order: what \
moves, how fast, and one camera movement (static, push in, pull out, pan, tilt, track, orbit). \
Keep it to one continuous shot without cuts; say explicitly when a weather or light effect is \
continuous or happens once, and how strong it is."
        }
    };
    format!(
        "You are an expert prompt writer for generative media models. {craft}

The negative prompt lists what the model must avoid: artefacts (blurry, deformed hands, extra \
limbs, watermark, text), and anything the description rules out.

Stay faithful to the description: add visual detail, never new story events or characters. \
When a style is given it wins over any style the description implies.

{language}

Answer with JSON only, exactly in this shape:
{example}",
        language = language.instruction(),
        example = example(kind, language),
    )
}

pub(super) fn user(description: &str, style: Option<&str>, language: Language) -> String {
    match (style, language) {
        (Some(style), Language::Chinese) => format!("画面描述：{description}\n风格：{style}"),
        (None, Language::Chinese) => format!("画面描述：{description}"),
        (Some(style), Language::English) => format!("Description: {description}\nStyle: {style}"),
        (None, Language::English) => format!("Description: {description}"),
    }
}

pub(super) fn example(kind: MediaKind, language: Language) -> Value {
    match (kind, language) {
        (MediaKind::Image, Language::Chinese) => json!({
            "prompt": "破败山神庙内景，中景，篝火微弱，林冲侧卧在稻草堆上，暖橙色火光从下方映照，冷蓝色雪光从破窗透入，电影感构图，写实风格，细节丰富，高清",
            "negativePrompt": "模糊，畸形的手，多余的肢体，水印，文字，低质量"
        }),
        (MediaKind::Image, Language::English) => json!({
            "prompt": "interior of a ruined mountain temple, medium shot, weak campfire, a man lying on straw, warm orange firelight from below, cold blue snow light through a broken window, cinematic composition, realistic, highly detailed",
            "negativePrompt": "blurry, deformed hands, extra limbs, watermark, text, low quality"
        }),
        (MediaKind::Video, Language::Chinese) => json!({
            "prompt": "破败山神庙内，篝火持续微弱燃烧，林冲侧卧在稻草堆上；他猛然睁眼，翻身坐起，伸手握住墙边的花枪；镜头缓慢推近；窗缝中零星雪粒持续飘入（极轻微）；写实电影风格",
            "negativePrompt": "画面闪烁，人物变形，多余的人物，镜头切换，水印，文字"
        }),
        (MediaKind::Video, Language::English) => json!({
            "prompt": "inside a ruined mountain temple, a weak campfire burns steadily, a man lies on straw; he opens his eyes, sits up and grabs the spear by the wall; slow push in; a few snowflakes keep drifting through the window cracks (very light); realistic cinematic style",
            "negativePrompt": "flicker, deformed body, extra people, scene cuts, watermark, text"
        }),
    }
}
