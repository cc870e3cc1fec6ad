//! The three-view prompt: one character in, three image prompts out (front, side, back) that
//! describe the same person identically, so the three pictures form a character sheet.

use serde_json::{Value, json};

use crate::common::language::Language;

pub(super) fn system(language: Language) -> String {
    format!(
        "You write prompts for a text-to-image model that draws character reference sheets \
(turnarounds) for an animation studio.

For the character described, write three prompts: a front view, a side view (profile, facing \
left) and a back view. Each prompt:
1. shows the whole body, standing upright in a neutral pose, arms relaxed, centred, on a plain \
light-grey background, with even studio lighting and no shadows or props besides the \
character's own;
2. repeats the same full description of the character word for word (age, gender, build, face, \
hair, clothing with colours and materials, accessories), so the three pictures match;
3. then names its view clearly (front view facing the viewer / side view in profile / back view \
from behind) and what is visible from that side;
4. ends with the style and a few quality terms.
Also write one negative prompt shared by the three: what must not appear (other people, \
background scenery, cropped body, extra limbs, deformed hands, text, watermark).

Where the description is thin, invent details that fit the character's personality and story, \
and use them in all three prompts.

{language}

Answer with JSON only, exactly in this shape:
{example}",
        language = language.instruction(),
        example = example(language),
    )
}

pub(super) fn user(character: &str, style: &str, language: Language) -> String {
    match language {
        Language::Chinese => format!("角色资料：\n{character}\n画风：{style}"),
        Language::English => format!("Character:\n{character}\nStyle: {style}"),
    }
}

pub(super) fn example(language: Language) -> Value {
    match language {
        Language::Chinese => json!({
            "frontPrompt": "角色设定图，正面视图，全身，站姿，双臂自然下垂，三十多岁男性，身材魁梧，浓眉，黑色短须，头戴毡笠，身穿打补丁的灰色棉袄，腰系布带，手持花枪，浅灰色纯色背景，均匀影棚光，动漫风格，线条清晰，高清",
            "sidePrompt": "角色设定图，侧面视图，面朝左侧，全身，站姿，三十多岁男性，身材魁梧，浓眉，黑色短须，头戴毡笠，身穿打补丁的灰色棉袄，腰系布带，手持花枪，浅灰色纯色背景，均匀影棚光，动漫风格，线条清晰，高清",
            "backPrompt": "角色设定图，背面视图，背对镜头，全身，站姿，三十多岁男性，身材魁梧，头戴毡笠，身穿打补丁的灰色棉袄，腰系布带，背后可见花枪，浅灰色纯色背景，均匀影棚光，动漫风格，线条清晰，高清",
            "negativePrompt": "多个人物，背景场景，身体被裁切，多余的肢体，畸形的手，文字，水印"
        }),
        Language::English => json!({
            "frontPrompt": "character reference sheet, front view facing the viewer, full body, standing, arms relaxed, man in his thirties, broad build, thick eyebrows, short black beard, felt hat, patched grey padded coat, cloth belt, holding a spear, plain light-grey background, even studio lighting, anime style, clean lines, high detail",
            "sidePrompt": "character reference sheet, side view in profile facing left, full body, standing, man in his thirties, broad build, thick eyebrows, short black beard, felt hat, patched grey padded coat, cloth belt, holding a spear, plain light-grey background, even studio lighting, anime style, clean lines, high detail",
            "backPrompt": "character reference sheet, back view from behind, full body, standing, man in his thirties, broad build, felt hat, patched grey padded coat, cloth belt, spear visible over the shoulder, plain light-grey background, even studio lighting, anime style, clean lines, high detail",
            "negativePrompt": "multiple people, background scenery, cropped body, extra limbs, deformed hands, text, watermark"
        }),
    }
}
